"""The joint log-linear learner (learning/joint.py) on synthetic data with known effects."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from learning.joint import Design, JointPosterior, Row, fit, fit_joint

CATALOGUE = {
    "content_type": ["a", "b", "c", "d"],
    "formula": ["f1", "f2", "f3"],
    "hook": ["h1", "h2", "h3"],
}
TRUE = {  # log effects
    ("content_type", "a"): 0.5,
    ("content_type", "b"): 0.0,
    ("content_type", "c"): -0.2,
    ("content_type", "d"): -0.4,
    ("formula", "f1"): 0.2,
    ("formula", "f2"): 0.0,
    ("formula", "f3"): -0.1,
    ("hook", "h1"): 0.0,
    ("hook", "h2"): 0.15,
    ("hook", "h3"): -0.1,
}


def draw_posts(
    n: int,
    rng: np.random.Generator,
    *,
    base: float = 3.0,
    effects: dict[tuple[str, str], float] = TRUE,
    pair: tuple[str, str, float] | None = None,
) -> list[tuple[dict[str, str], float]]:
    posts = []
    for _ in range(n):
        arms = {d: str(rng.choice(arms)) for d, arms in CATALOGUE.items()}
        log_mu = math.log(base) + sum(effects[(d, a)] for d, a in arms.items())
        if pair is not None and (arms["formula"], arms["hook"]) == pair[:2]:
            log_mu += pair[2]
        posts.append((arms, float(rng.poisson(math.exp(log_mu)))))
    return posts


def centred(values: dict[str, float]) -> dict[str, float]:
    mean = sum(values.values()) / len(values)
    return {k: v - mean for k, v in values.items()}


def test_fit_recovers_known_effects_within_their_posterior_intervals() -> None:
    rng = np.random.default_rng(7)
    rows = [Row(arms, y) for arms, y in draw_posts(1500, rng)]
    design = Design(CATALOGUE)
    sd = np.full(design.size, 1.0)
    sd[0] = 3.0

    result = fit(design, rows, prior_mean=np.zeros(design.size), prior_sd=sd)

    posterior = fit_joint(CATALOGUE, rows, None, interaction=None)[0]
    outside = 0
    for dimension, arms in CATALOGUE.items():
        truth = centred({a: TRUE[(dimension, a)] for a in arms})
        learned = centred({a: result.effect(dimension, a)[0] for a in arms})
        spread = max(posterior.contrast_sd(dimension, arms[0], other) for other in arms[1:])
        assert spread < 0.2  # the contrasts are well identified with 1,500 posts
        for arm in arms:
            outside += abs(learned[arm] - truth[arm]) > 3 * spread
    assert outside == 0
    assert result.dispersion == pytest.approx(1.0, abs=0.15)  # Poisson data


def test_overdispersed_data_widen_the_posterior() -> None:
    rng = np.random.default_rng(3)
    posts = draw_posts(600, rng)
    poisson = [Row(arms, y) for arms, y in posts]
    # negative binomial with the same means: variance mu + mu^2 / 1.5
    noisy = []
    for arms, _ in posts:
        mu = 3.0 * math.exp(sum(TRUE[(d, a)] for d, a in arms.items()))
        noisy.append(Row(arms, float(rng.negative_binomial(1.5, 1.5 / (1.5 + mu)))))
    design = Design(CATALOGUE)
    sd = np.full(design.size, 1.0)

    wide = fit(design, noisy, prior_mean=np.zeros(design.size), prior_sd=sd)

    assert wide.dispersion > 2.0
    wide_sd = fit_joint(CATALOGUE, noisy, None)[0].contrast_sd("content_type", "a", "b")
    tight_sd = fit_joint(CATALOGUE, poisson, None)[0].contrast_sd("content_type", "a", "b")
    assert wide_sd > 1.3 * tight_sd


def test_thompson_draws_favour_the_best_arms_once_data_are_in() -> None:
    rng = np.random.default_rng(11)
    rows = [Row(arms, y) for arms, y in draw_posts(800, rng)]
    posterior = fit_joint(CATALOGUE, rows, None, interaction=None)[0]

    picks = [posterior.best(posterior.sample(rng)) for _ in range(300)]

    assert sum(p["content_type"] == "a" for p in picks) > 0.9 * len(picks)
    assert sum(p["formula"] == "f1" for p in picks) > 0.5 * len(picks)


def test_without_data_every_arm_is_drawn() -> None:
    rng = np.random.default_rng(5)
    posterior = fit_joint(CATALOGUE, [], None)[0]

    picks = [posterior.best(posterior.sample(rng))["content_type"] for _ in range(400)]

    counts = {arm: picks.count(arm) for arm in CATALOGUE["content_type"]}
    assert min(counts.values()) > 400 / 4 * 0.6  # roughly uniform


def test_the_interaction_term_finds_a_pair_the_main_effects_miss() -> None:
    rng = np.random.default_rng(2)
    # f3 and h3 are poor alone (and on average), but together they are the best pair
    effects = {**TRUE, ("formula", "f3"): -0.4, ("hook", "h3"): -0.4}
    posts = draw_posts(2000, rng, effects=effects, pair=("f3", "h3", 1.2))
    rows = [Row(arms, y) for arms, y in posts]

    additive = fit_joint(CATALOGUE, rows, None, interaction=None)[0]
    joint = fit_joint(CATALOGUE, rows, None, interaction=("formula", "hook"))[0]

    plain = [Row(arms, y) for arms, y in draw_posts(2000, rng, effects=effects)]
    no_pair = fit_joint(CATALOGUE, plain, None, interaction=("formula", "hook"))[0]
    assert joint.tau_pair > 0.15  # learned: the data show an interaction
    assert no_pair.tau_pair < 0.05  # none in the data: the pair terms stay near zero
    best_additive = additive.best(additive.fit.mean)
    best_joint = joint.best(joint.fit.mean)
    assert (best_joint["formula"], best_joint["hook"]) == ("f3", "h3")
    assert (best_additive["formula"], best_additive["hook"]) != ("f3", "h3")


def _value(design: Design, theta: np.ndarray, arms: dict[str, str]) -> float:
    return float(sum(theta[c] for c in design.columns(arms)[1:]))


ALL_PAIRS = (("content_type", "formula"), ("content_type", "hook"), ("formula", "hook"))


def test_pair_terms_for_every_pair_of_dimensions_find_a_content_type_x_formula_pair() -> None:
    """Issue 17 item 4: in generated worlds two of three pairs join a content type with a
    formula or a hook, which a formula x hook term cannot see. c and f3 are average alone
    (slightly below), 3x together: better than the best arms alone (a, f1)."""
    rng = np.random.default_rng(3)
    effects = {**TRUE, ("content_type", "c"): -0.05, ("formula", "f3"): -0.05}
    posts = []
    for arms, _y in draw_posts(2000, rng, effects=effects):
        log_mu = math.log(3.0) + sum(effects[(d, a)] for d, a in arms.items())
        if (arms["content_type"], arms["formula"]) == ("c", "f3"):
            log_mu += math.log(3.0)
        posts.append(Row(arms, float(rng.poisson(math.exp(log_mu)))))

    one = fit_joint(CATALOGUE, posts, None, interaction=("formula", "hook"))[0]
    every = fit_joint(CATALOGUE, posts, None, interaction=ALL_PAIRS)[0]

    best_one, best_every = one.best(one.fit.mean), every.best(every.fit.mean)
    assert (best_every["content_type"], best_every["formula"]) == ("c", "f3")
    assert (best_one["content_type"], best_one["formula"]) != ("c", "f3")
    assert every.tau_pair > 0.1 and one.tau_pair < 0.05  # the interaction only the new terms see


def test_a_joint_choice_over_three_pairs_is_the_best_combination() -> None:
    """best() with several pairs maximises over every combination of the paired dimensions'
    arms (checked against enumerating them), within the allowed arms."""
    design = Design(CATALOGUE, ALL_PAIRS)
    rng = np.random.default_rng(9)
    posterior = JointPosterior(
        fit=fit(design, [], prior_mean=np.zeros(design.size), prior_sd=np.ones(design.size)),
        rho=0.0,
        tau=0.5,
        engagement=None,
    )
    allowed = {**CATALOGUE, "formula": ["f1", "f3"]}
    for _ in range(20):
        theta = rng.normal(size=design.size)
        chosen = posterior.best(theta, allowed=allowed)

        combos = [
            (_value(design, theta, {"content_type": ct, "formula": f, "hook": h}), (ct, f, h))
            for ct in allowed["content_type"]
            for f in allowed["formula"]
            for h in allowed["hook"]
        ]
        assert (chosen["content_type"], chosen["formula"], chosen["hook"]) == max(combos)[1]


def test_engagement_evidence_sharpens_follower_effects_when_they_agree() -> None:
    """Few follower counts, many engagements with the same arm effects: borrowing helps."""
    errors_alone, errors_joint = [], []
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        followers = [Row(arms, y) for arms, y in draw_posts(60, rng, base=1.0)]
        engagement = [
            Row(
                row.arms,
                float(rng.poisson(40.0 * math.exp(sum(TRUE[(d, a)] for d, a in row.arms.items())))),
            )
            for row in followers
        ]
        alone = fit_joint(CATALOGUE, followers, None, interaction=None)[0]
        joint = fit_joint(CATALOGUE, followers, engagement, interaction=None)[0]
        assert 0.5 < joint.rho < 1.5
        for posterior, errors in ((alone, errors_alone), (joint, errors_joint)):
            for dimension, arms in CATALOGUE.items():
                truth = centred({a: TRUE[(dimension, a)] for a in arms})
                learned = centred({a: posterior.fit.effect(dimension, a)[0] for a in arms})
                errors.extend(abs(learned[a] - truth[a]) for a in arms)

    assert np.mean(errors_joint) < 0.8 * np.mean(errors_alone)


def test_engagement_that_disagrees_with_follows_is_not_trusted_blindly() -> None:
    """Engagement effects opposite to the follower effects: rho goes to ~0, tau stays wide."""
    rng = np.random.default_rng(9)
    followers = [Row(arms, y) for arms, y in draw_posts(400, rng, base=2.0)]
    opposite = {k: -v for k, v in TRUE.items()}
    engagement = [
        Row(
            row.arms,
            float(rng.poisson(40.0 * math.exp(sum(opposite[(d, a)] for d, a in row.arms.items())))),
        )
        for row in followers
    ]

    joint = fit_joint(CATALOGUE, followers, engagement, interaction=None)[0]

    assert joint.rho < 0.2
    assert joint.best(joint.fit.mean)["content_type"] == "a"


def test_arm_table_intervals_contain_their_means_and_rank_best_first() -> None:
    rng = np.random.default_rng(4)
    rows = [Row(arms, y) for arms, y in draw_posts(800, rng)]
    posterior = fit_joint(CATALOGUE, rows, None, interaction=None)[0]

    table = posterior.arm_table("content_type")

    assert table[0][0] == "a"
    assert all(low < mean < high for _, mean, low, high in table)
    assert [row[1] for row in table] == sorted((row[1] for row in table), reverse=True)


def test_the_sparse_layout_computes_the_dense_matrix_products() -> None:
    """Regression (Newton steps use the 1s' columns instead of the dense design): X @ theta,
    X.T @ r and X.T diag(v) X agree with the dense matrix, also for rows missing a dimension
    or naming unknown arms, and for a layout grown from an earlier one's prefix."""
    rng = np.random.default_rng(4)
    catalogue = {"content_type": ["a", "b", "c"], "formula": ["f", "g"], "hook": ["h", "i", "j"]}
    design = Design(catalogue, ("formula", "hook"))
    rows: list[dict[str, str]] = []
    for _ in range(40):
        arms = {d: str(rng.choice(a)) for d, a in catalogue.items() if rng.random() < 0.9}
        if rng.random() < 0.1:
            arms["content_type"] = "unknown"
        rows.append(arms)
    first = design.layout(rows[:25])  # the second layout reuses this one's rows
    layout = design.layout(rows)
    dense = np.zeros((len(rows), design.size))
    for i, arms in enumerate(rows):
        dense[i, design.columns(arms)] = 1.0
    theta, r, v = rng.normal(size=design.size), rng.normal(size=40), rng.uniform(size=40)
    np.testing.assert_allclose(layout.dense(), dense)
    np.testing.assert_allclose(first.dense(), dense[:25])
    np.testing.assert_allclose(layout.eta(theta), dense @ theta)
    np.testing.assert_allclose(layout.xt(r), dense.T @ r)
    np.testing.assert_allclose(layout.gram(v), dense.T @ np.diag(v) @ dense)
    assert layout.used() == int(np.count_nonzero(dense.sum(axis=0)))


def test_the_sparse_layout_with_the_audience_covariate_computes_the_dense_products() -> None:
    """The continuous audience column joins the 0/1 columns in every product."""
    rng = np.random.default_rng(5)
    catalogue = {"content_type": ["a", "b", "c"], "formula": ["f", "g"]}
    design = Design(catalogue, None, covariate=True)
    assert design.z_col == design.size - 1
    rows = [{d: str(rng.choice(a)) for d, a in catalogue.items()} for _ in range(30)]
    z = rng.normal(size=30)
    layout = design.rows_layout(
        [Row(arms, 0.0, z=float(zi)) for arms, zi in zip(rows, z, strict=True)]
    )
    dense = np.zeros((30, design.size))
    for i, arms in enumerate(rows):
        dense[i, design.columns(arms)] = 1.0
    dense[:, design.z_col] = z
    theta, r, v = rng.normal(size=design.size), rng.normal(size=30), rng.uniform(size=30)
    np.testing.assert_allclose(layout.dense(), dense)
    np.testing.assert_allclose(layout.eta(theta), dense @ theta)
    np.testing.assert_allclose(layout.xt(r), dense.T @ r)
    np.testing.assert_allclose(layout.gram(v), dense.T @ np.diag(v) @ dense)
    assert layout.used() == design.size - 0  # every column has a non-zero here


def test_the_audience_covariate_keeps_growth_from_crediting_the_arm_played_late() -> None:
    """a and b pay the same per follower; both are played while the account is small, only b
    once it has doubled. Without the covariate b takes the growth's credit; with it, it does
    not, and the elasticity is learned (followers per post ~ audience here)."""
    rng = np.random.default_rng(8)
    rows = []
    for i in range(400):
        audience = 1000.0 * 2 ** (i / 400)
        arm = ("a" if i % 2 else "b") if i < 200 else "b"
        arms = {"content_type": arm, "formula": "f1", "hook": "h1"}
        value = float(rng.poisson(10.0 * audience / 1000.0))
        rows.append(Row(arms, value, z=math.log(audience / 1000.0)))
    plain = fit_joint(CATALOGUE, [Row(r.arms, r.value) for r in rows], None, interaction=None)[0]
    aware = fit_joint(CATALOGUE, rows, None, interaction=None, covariate=True)[0]

    def b_over_a(posterior: object) -> float:
        fit_ = posterior.fit  # type: ignore[attr-defined]
        return fit_.effect("content_type", "b")[0] - fit_.effect("content_type", "a")[0]

    assert b_over_a(plain) > 0.15  # the growth credited to b
    assert abs(b_over_a(aware)) < 0.08
    elasticity = aware.fit.mean[aware.fit.design.z_col]
    assert 0.7 < elasticity < 1.3


def negbin_posts(
    n: int, rng: np.random.Generator, shape: float, base: float = 6.0
) -> list[tuple[dict[str, str], float]]:
    """Posts with the known effects and negative binomial counts (variance mu + mu^2/shape)."""
    posts = []
    for arms, _ in draw_posts(n, rng, base=base):
        mu = base * math.exp(sum(TRUE[(d, a)] for d, a in arms.items()))
        posts.append((arms, float(rng.negative_binomial(shape, shape / (shape + mu)))))
    return posts


def test_negative_binomial_fit_learns_the_shape_and_the_effects() -> None:
    rng = np.random.default_rng(11)
    rows = [Row(arms, y) for arms, y in negbin_posts(1500, rng, shape=2.0)]
    design = Design(CATALOGUE)
    sd = np.full(design.size, 1.0)
    sd[0] = 3.0

    result = fit(design, rows, prior_mean=np.zeros(design.size), prior_sd=sd, negbin=True)

    assert 1.3 < result.shape < 3.2  # the grid point nearest 2
    assert result.dispersion == 1.0
    again = fit(
        design,
        rows,
        prior_mean=np.zeros(design.size),
        prior_sd=sd,
        negbin=True,
        shape=5.0,
        reestimate=False,
    )
    assert again.shape == 5.0 and again.next_shape == 5.0  # a given shape is kept
    for dimension, arms in CATALOGUE.items():
        truth = centred({a: TRUE[(dimension, a)] for a in arms})
        learned = centred({a: result.effect(dimension, a)[0] for a in arms})
        for arm in arms:
            _, arm_sd = result.effect(dimension, arm)
            assert abs(learned[arm] - truth[arm]) < 4 * arm_sd, (dimension, arm)


def test_one_viral_post_does_not_crown_its_arm() -> None:
    """One post with 60x its expected count (a viral outlier) on the worst content type: the
    quasi-Poisson mode moves that arm far up; the negative binomial fit, where a post's residual
    counts at most HUBER_C standard deviations, hardly moves it and keeps it below the best."""
    rng = np.random.default_rng(5)
    posts = negbin_posts(400, rng, shape=2.0)
    arms = {"content_type": "d", "formula": "f2", "hook": "h1"}
    mu = 6.0 * math.exp(TRUE[("content_type", "d")])
    viral = [*posts, (arms, 60.0 * mu)]
    design = Design(CATALOGUE)
    sd = np.full(design.size, 1.0)
    sd[0] = 3.0

    def d_minus_a(data: list[tuple[dict[str, str], float]], negbin: bool) -> float:
        rows = [Row(a, y) for a, y in data]
        result = fit(design, rows, prior_mean=np.zeros(design.size), prior_sd=sd, negbin=negbin)
        return result.effect("content_type", "d")[0] - result.effect("content_type", "a")[0]

    moved_qp = d_minus_a(viral, negbin=False) - d_minus_a(posts, negbin=False)
    moved_nb = d_minus_a(viral, negbin=True) - d_minus_a(posts, negbin=True)
    assert moved_qp > 0.3
    assert moved_nb < 0.5 * moved_qp
    assert d_minus_a(viral, negbin=True) < 0  # the best arm is still ahead


def tried_once_posterior() -> JointPosterior:
    """400 posts whose follows and clicks share the known effects; content type "a" was posted
    once (the first post), so the click model knows little about it."""
    rng = np.random.default_rng(21)
    followers, clicks = [], []
    for i in range(400):
        arms = {d: str(rng.choice(options)) for d, options in CATALOGUE.items()}
        if i == 0:
            arms["content_type"] = "a"
        elif arms["content_type"] == "a":
            arms["content_type"] = "b"
        log_effect = sum(TRUE[(d, a)] for d, a in arms.items())
        followers.append(Row(arms, float(rng.poisson(4.0 * math.exp(log_effect)))))
        clicks.append(Row(arms, float(rng.poisson(20.0 * math.exp(log_effect)))))
    return fit_joint(CATALOGUE, followers, clicks, interaction=None, negbin=True)[0]


def test_draws_carry_the_auxiliary_uncertainty_of_an_arm_tried_once() -> None:
    """Follows and clicks agree, so the follower effects are held close to the click effects
    (small tau). Content type "a" was posted once: the click model knows little about it, and
    with the carry its draws spread accordingly, instead of by the follower model's tau alone;
    a well-tried arm's draws hardly change."""
    posterior = tried_once_posterior()
    assert posterior.tau < 0.2 and posterior.rho > 0.5
    design = posterior.fit.design
    a, b = design.index[("content_type", "a")], design.index[("content_type", "b")]

    def spread(carry: bool, col: int) -> float:
        chosen = replace(posterior, carry=carry)
        draws = [chosen.sample(np.random.default_rng(s)) for s in range(400)]
        return float(np.std([d[col] - d[design.index[("content_type", "c")]] for d in draws]))

    assert spread(True, a) > 2.0 * spread(False, a)
    assert spread(True, b) < 1.5 * spread(False, b)


def test_reported_intervals_are_as_wide_as_the_draws() -> None:
    """arm_table's intervals use draw_cov, the covariance the Thompson draws actually have (the
    fit's plus the carried auxiliary uncertainty): an arm tried once is reported as uncertain
    as the learner treats it when choosing."""
    posterior = tried_once_posterior()
    design = posterior.fit.design
    c = np.zeros(design.size)
    c[design.index[("content_type", "a")]] = 1.0
    c[design.index[("content_type", "c")]] = -1.0
    draws = np.array([posterior.sample(np.random.default_rng(s)) for s in range(2000)])
    empirical = float(np.std(draws @ c))

    assert math.sqrt(c @ posterior.draw_cov() @ c) == pytest.approx(empirical, rel=0.1)
    assert math.sqrt(c @ posterior.fit.cov @ c) < 0.6 * empirical  # the fit alone: too narrow
    table = {arm: (low, high) for arm, _, low, high in posterior.arm_table("content_type")}
    narrow = {
        arm: (low, high)
        for arm, _, low, high in replace(posterior, carry=False).arm_table("content_type")
    }
    # log-normal intervals: compare their widths on the log scale
    assert math.log(table["a"][1] / table["a"][0]) > 1.8 * math.log(narrow["a"][1] / narrow["a"][0])


def test_the_centring_matrix_centres_as_centre_does() -> None:
    """draw_cov builds the centring as one matrix (it was _centre applied to every unit vector,
    the learn cycle's largest cost): the same numbers, for any vector."""
    from learning.joint import _centre, _centring

    design = tried_once_posterior().fit.design
    vector = np.random.default_rng(7).standard_normal(design.size)

    assert np.allclose(_centring(design) @ vector, _centre(design, vector), rtol=0, atol=1e-12)
    assert np.array_equal(
        _centring(design), np.stack([_centre(design, u) for u in np.eye(design.size)], axis=1)
    )
