"""Thompson sampling policy: choosing, updating, ranking, and a simulated Poisson bandit."""

from collections import Counter

import numpy as np
import pytest

from learning.policy import ArmChange, prob_best, rank_arms, thompson_choose, update_posteriors
from learning.posteriors import GammaPoisson, prior_from_config

PRIOR = prior_from_config(2.0, 1.0)


def _confident(mean: float, posts: float) -> GammaPoisson:
    return GammaPoisson(mean * posts, posts)


def test_thompson_exploits_the_clear_winner_and_still_explores_an_untried_arm():
    posteriors = {"formula": {"strong": _confident(5.0, 20), "weak": _confident(1.0, 20)}}
    arms = {"formula": ["strong", "weak", "untried"]}
    rng = np.random.default_rng(42)
    picks = Counter(thompson_choose(posteriors, arms, PRIOR, rng)["formula"] for _ in range(3000))
    assert picks["strong"] > 0.8 * 3000
    assert picks["untried"] > 0  # never dropped: the prior's draws sometimes beat 5
    assert picks["weak"] < picks["untried"]


def test_an_arm_with_no_data_is_chosen_sometimes_and_at_its_prob_best_rate():
    posteriors = {"hook": {"a": _confident(3.0, 10), "b": _confident(2.0, 10)}}
    arms = {"hook": ["a", "b", "new"]}
    rng = np.random.default_rng(7)
    n = 4000
    picks = Counter(thompson_choose(posteriors, arms, PRIOR, rng)["hook"] for _ in range(n))
    p = prob_best(posteriors["hook"], arms["hook"], PRIOR, np.random.default_rng(8), draws=20_000)
    assert picks["new"] > 0.05 * n
    for arm in arms["hook"]:
        assert picks[arm] / n == pytest.approx(p[arm], abs=0.03)


def test_thompson_chooses_one_catalogue_arm_per_dimension():
    arms = {"content_type": ["thread", "fact"], "formula": ["list"], "hook": ["q", "stat", "story"]}
    choice = thompson_choose({}, arms, PRIOR, np.random.default_rng(0))
    assert set(choice) == set(arms)
    for dimension, arm in choice.items():
        assert arm in arms[dimension]
    # a retired arm with a great posterior is never chosen
    retired = {"formula": {"old": _confident(100.0, 100)}}
    assert thompson_choose(retired, {"formula": ["list"]}, PRIOR, np.random.default_rng(0)) == {
        "formula": "list"
    }
    with pytest.raises(ValueError):
        thompson_choose({}, {"hook": []}, PRIOR, np.random.default_rng(0))


def test_thompson_breaks_exact_ties_at_random():
    class Constant:
        def sample(self, rng, size=None):
            return 1.0

    arms = {"hook": ["a", "b", "c"]}
    posteriors = {"hook": {arm: Constant() for arm in arms["hook"]}}
    rng = np.random.default_rng(5)
    picks = Counter(thompson_choose(posteriors, arms, PRIOR, rng)["hook"] for _ in range(900))
    assert set(picks) == {"a", "b", "c"}
    assert min(picks.values()) > 200


def test_update_posteriors_returns_new_posteriors_and_changes_without_mutating_inputs():
    old_a = PRIOR.updated(4.0)
    posteriors = {"formula": {"a": old_a, "b": PRIOR.updated(1.0)}, "hook": {"x": PRIOR}}
    snapshot = {d: dict(by_arm) for d, by_arm in posteriors.items()}
    chosen = {"formula": "a", "hook": "y", "content_type": "thread"}

    new, changes = update_posteriors(posteriors, chosen, 3.0, prior=PRIOR)

    assert posteriors == snapshot
    assert new["formula"]["a"] == old_a.updated(3.0)
    assert new["formula"]["b"] == posteriors["formula"]["b"]
    assert new["hook"] == {"x": PRIOR, "y": PRIOR.updated(3.0)}
    assert new["content_type"] == {"thread": PRIOR.updated(3.0)}
    assert changes == [
        ArmChange("formula", "a", old_a, old_a.updated(3.0)),
        ArmChange("hook", "y", None, PRIOR.updated(3.0)),
        ArmChange("content_type", "thread", None, PRIOR.updated(3.0)),
    ]
    assert changes[1].as_dict()["before"] is None
    assert changes[0].as_dict()["after"] == {"family": "gamma_poisson", "shape": 9.0, "rate": 3.0}


def test_update_posteriors_discounts_every_arm_of_the_dimension_then_updates_the_chosen():
    a, b = PRIOR.updated(10.0).updated(10.0), PRIOR.updated(0.0).updated(0.0)
    posteriors = {"formula": {"a": a, "b": b}, "hook": {"x": a}}
    new, changes = update_posteriors(
        posteriors, {"formula": "b"}, 1.0, prior=PRIOR, discount=0.5, weight=2.0
    )
    assert new["formula"]["a"] == a.discounted(0.5, PRIOR)
    assert new["formula"]["b"] == b.discounted(0.5, PRIOR).updated(1.0, weight=2.0)
    assert new["hook"]["x"] == a  # dimension not in this post: untouched
    assert changes[0].before == b
    with pytest.raises(ValueError):
        update_posteriors(posteriors, {"formula": "a"}, 1.0, prior=PRIOR, discount=0.0)
    with pytest.raises(ValueError):
        update_posteriors(posteriors, {"formula": "a"}, -1.0, prior=PRIOR)


def test_discounting_restores_uncertainty_of_an_arm_not_tried_lately():
    posteriors = {"hook": {"old": _confident(1.0, 50), "busy": _confident(3.0, 50)}}
    before = posteriors["hook"]["old"].interval()
    for _ in range(200):  # 0.95**200 ~ 4e-5 of the old evidence is left
        posteriors, _changes = update_posteriors(
            posteriors, {"hook": "busy"}, 3.0, prior=PRIOR, discount=0.95
        )
    after = posteriors["hook"]["old"].interval()
    assert after[1] - after[0] > 3 * (before[1] - before[0])
    assert posteriors["hook"]["old"].mean == pytest.approx(PRIOR.mean, rel=0.05)


def test_rank_arms_sorts_by_mean_and_shows_untried_arms_with_the_prior():
    posteriors = {
        "a": _confident(1.0, 10),
        "b": PRIOR.updated(6.0).updated(5.0),
        "c": _confident(4.0, 3),
    }
    ranks = rank_arms(posteriors, ["a", "b", "c", "new"], PRIOR)
    assert [r.arm for r in ranks] == ["b", "c", "new", "a"]
    new = ranks[2]
    assert (new.mean, new.n_effective) == (PRIOR.mean, 0.0)
    assert (new.low, new.high) == PRIOR.interval(0.9)
    assert ranks[0].n_effective == pytest.approx(2.0)
    assert ranks[-1].n_effective == pytest.approx(9.0)
    for r in ranks:
        assert r.low < r.mean < r.high


def test_prob_best_sums_to_one_and_favours_the_best_arm():
    posteriors = {"a": _confident(1.0, 10), "b": _confident(5.0, 10), "c": _confident(4.5, 10)}
    p = prob_best(posteriors, ["a", "b", "c", "new"], PRIOR, np.random.default_rng(0))
    assert sum(p.values()) == pytest.approx(1.0)
    assert list(p) == ["a", "b", "c", "new"]
    assert p["b"] > p["c"] > p["a"]
    assert p["b"] > 0.5
    assert p["new"] > 0.0
    with pytest.raises(ValueError):
        prob_best(posteriors, [], PRIOR, np.random.default_rng(0))


def _run_bandit(seed: int, rates: list[float], rounds: int, discount: float = 1.0) -> int:
    rng = np.random.default_rng(seed)
    names = [f"arm{i}" for i in range(len(rates))]
    prior = prior_from_config(4.0, 1.0)
    posteriors: dict[str, dict[str, GammaPoisson]] = {}
    for _ in range(rounds):
        arm = thompson_choose(posteriors, {"formula": names}, prior, rng)["formula"]
        y = float(rng.poisson(rates[names.index(arm)]))
        posteriors, _ = update_posteriors(
            posteriors, {"formula": arm}, y, prior=prior, discount=discount
        )
    top = rank_arms(posteriors["formula"], names, prior)[0].arm
    return names.index(top)


@pytest.mark.parametrize("discount", [1.0, 0.99])
def test_simulated_poisson_bandit_finds_the_best_arm(discount):
    rates = [2, 3, 3.5, 4, 5, 7, 4.5]
    best = int(np.argmax(rates))
    hits = sum(_run_bandit(seed, rates, 200, discount) == best for seed in range(20))
    assert hits >= 17
