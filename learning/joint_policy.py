"""The default policy: Thompson sampling from the joint model (:mod:`learning.joint`).

The policy is a frozen value (its settings); what it learns between plans is a
:class:`JointState` it takes and returns: the previous fit's Newton starting points and
empirical-Bayes spreads (:class:`learning.joint.FitState`), the changes found in the history
(:mod:`learning.drift`), and per-post rows kept under each post's content id. The state only
saves work and remembers the changes found: a policy given no state refits from scratch and finds
the changes again.

A policy may be given a :class:`FitMemo`, shared by the accounts it plans for: a fit on no posts
at all (a new account, or one whose first posts are still in flight) depends only on the
catalogue, the model's settings and the previous fit's state, which many accounts share, so it
is made once and reused, the same numbers to the last bit (issue 16: 10,000 new accounts made
10,000 identical pairs of fits, ~4 ms each, in their first plan).
"""

from __future__ import annotations

import math
import operator
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import ClassVar

import numpy as np

from learning.design import Design, Pairs, pair_sets
from learning.drift import Change, Series, detect
from learning.estimates import DRAWS, ArmEstimate, Estimates, p_best, posts_per_arm, ranked
from learning.folded import Folded, fold
from learning.joint import Fit, FitState, JointPosterior, Row, fit_joint, refresh_due
from learning.outcomes import Catalogue, Outcome, finished, unit

PROVISIONAL_MIN_SHARE = 0.05
CHANGES_PER_PLAN = 3  # at most this many splits found in one plan (a restart finds them anew)
# Bounded cost per plan (issue 17, docs/learning.md "Cost per plan"): the newest FOLD_WINDOW
# finished posts are fit post by post; older ones are folded into the quadratic of their
# log-likelihood (learning.folded), FOLD_BATCH at a time, once the window passes
# FOLD_WINDOW + FOLD_BATCH. Chosen with bench.plan_cost: a plan on 1,500 posts then costs
# within 2x of one on 150; the project's 90-day scenarios at 3-4 posts a day (at most 360 posts)
# never fold, high_frequency (10 a day, 900 posts) does from day 40.
FOLD_WINDOW = 300
FOLD_BATCH = 100
# Gated forgetting (issue 17 item 3, docs/learning.md "Drift"): the half-life once the gate opens
FORGET_HALF_LIFE_DAYS = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class JointState:
    """What the joint policy carries from one plan to the next (see the module docstring).

    ``rows``: content id -> (the outcome, the auxiliary signal, its objective row, its auxiliary
    row) for finished posts (kept only without a half-life, when a post's rows never change);
    ``eras``: content id -> (how many changes were known, its arms with retired eras renamed);
    ``reference``: the audience the rows' covariate is measured from; ``peak``: the largest
    change statistic seen so far, split or not; ``fold``: the oldest finished posts folded into
    a quadratic (:class:`Fold`; None: every post is fit).
    """

    fit: FitState = field(default_factory=FitState)
    changes: tuple[Change, ...] = ()
    peak: float = 0.0
    reference: float | None = None
    rows: Mapping[int, tuple[Outcome, Callable[[Outcome], float], Row, Row]] = field(
        default_factory=dict
    )
    eras: Mapping[int, tuple[int, Mapping[str, str]]] = field(default_factory=dict)
    fold: Fold | None = None
    # when the forgetting gate opened (Joint.forget_threshold; None: not yet)
    forgetting: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Fold:
    """The oldest finished posts, folded (:mod:`learning.folded`): ``outcomes`` (the first of
    the finished posts, oldest first), the quadratics of their objective and auxiliary
    log-likelihoods, and what they were folded under: the auxiliary ``signal``, the covariate's
    ``reference`` and the ``changes`` known. ``signal_total``: their auxiliary signal's sum (the
    provisional rows' scale). A plan uses it only while all of these still hold."""

    outcomes: tuple[Outcome, ...]
    objective: Folded
    auxiliary: Folded
    signal: Callable[[Outcome], float]
    reference: float | None
    changes: tuple[Change, ...]
    signal_total: float


class FitMemo:
    """Fits on no posts, shared between accounts: ``key`` -> the posterior and the fit state
    :func:`learning.joint.fit_joint` returned (both immutable in use: a later fit copies its
    starting points). One memo serves one policy (its settings are part of every fit) and keeps
    the ``size`` most recently used fits."""

    __slots__ = ("_fits", "hits", "size")

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.hits = 0
        self._fits: OrderedDict[Hashable, tuple[JointPosterior, FitState]] = OrderedDict()

    def get(self, key: Hashable) -> tuple[JointPosterior, FitState] | None:
        found = self._fits.get(key)
        if found is not None:
            self._fits.move_to_end(key)
            self.hits += 1
        return found

    def put(self, key: Hashable, fitted: tuple[JointPosterior, FitState]) -> None:
        self._fits[key] = fitted
        while len(self._fits) > self.size:
            self._fits.popitem(last=False)


def _array_key(values: np.ndarray | None) -> Hashable:
    return None if values is None else (values.shape, values.dtype.str, values.tobytes())


def fit_state_key(state: FitState) -> Hashable:
    """Everything in ``state`` a fit depends on, by value (its design by catalogue and
    settings; its arrays by their bytes)."""
    design = state.design
    return (
        None
        if design is None
        else (
            tuple((d, tuple(arms)) for d, arms in design.catalogue.items()),
            design.pairs,
            design.covariate,
        ),
        state.size,
        _array_key(state.own),
        _array_key(state.eng),
        _array_key(state.final),
        state.phi_eng,
        state.k_eng,
        state.phi_final,
        state.k_final,
        state.hyper,
    )


class _Pass:
    """One call's working copy of the per-post caches (the state it was given is not changed)."""

    __slots__ = ("eras", "state")

    def __init__(self, state: JointState) -> None:
        self.state = state
        self.eras: dict[int, tuple[int, Mapping[str, str]]] = {}

    def done(self) -> JointState:
        return replace(self.state, eras=self.eras)


@dataclass(frozen=True, slots=True)
class Joint:
    """Thompson sampling from :func:`learning.joint.fit_joint` (see that module for the maths).

    ``objective``: "followers" (engagement is then auxiliary evidence) or "engagement".
    ``half_life_days``: posts this old count half (None: never forget).
    ``interaction``: the pair, or pairs, of dimensions given pairwise terms (None: additive
    only; :func:`learning.design.pair_sets`).
    ``provisional``: use in-flight posts' partial engagement (scaled to its expected final).
    ``change_threshold``: split a dimension's history where one of its arms' followers per post
    dropped this clearly (:mod:`learning.drift`; None: never).
    ``forget_threshold``: once the same drop statistic passes this (the gate), forget older
    posts with a half-life of ``forget_half_life_days`` from then on (None: never).
    """

    name: str = "joint"
    learns_hours: ClassVar[bool] = True
    objective: str = "followers"
    half_life_days: float | None = None
    interaction: Pairs | None = ("formula", "hook")
    provisional: bool = True
    exploration: float = 0.6  # scale of the posterior spread in a Thompson draw (1: plain)
    change_threshold: float | None = None
    forget_threshold: float | None = None
    forget_half_life_days: float = FORGET_HALF_LIFE_DAYS
    audience: bool = True  # model followers per post as growing with the account's audience
    negbin: bool = True  # negative binomial counts (variance mu + mu^2/k), else quasi-Poisson
    carry_auxiliary: bool = True  # draws carry the auxiliary model's uncertainty (JointPosterior)
    # finished posts fit post by post; older ones are folded (None: never fold, fit every post)
    fold_window: int | None = FOLD_WINDOW
    # fits on no posts, shared by the accounts this policy plans for (None: every fit is made)
    memo: FitMemo | None = field(default=None, compare=False, repr=False)

    def weight(self, outcome: Outcome, now: datetime) -> float:
        if self.half_life_days is None:
            return 1.0
        age = max((now - outcome.posted_at).total_seconds() / 86400.0, 0.0)
        return float(0.5 ** (age / self.half_life_days))

    def arms(self, outcome: Outcome, work: _Pass) -> Mapping[str, str]:
        """The post's arms as the model sees them: in a dimension whose history was split, a post
        from before the latest split has its arm in a retired dimension ``"<dimension>@<era>"``
        (its own effects), so only posts since the change inform the dimension's current
        effects."""
        changes = work.state.changes
        if not changes:
            return outcome.arms
        key = outcome.key
        if key is not None:
            known = work.eras.get(key) or work.state.eras.get(key)
            if known is not None and known[0] == len(changes):
                work.eras[key] = known
                return known[1]
        arms = dict(outcome.arms)
        for dimension, splits in _splits(changes).items():
            era = sum(1 for at in splits if at <= outcome.posted_at)
            if era < len(splits) and dimension in arms:
                arms[f"{dimension}@{era}"] = arms.pop(dimension)
        if key is not None:
            work.eras[key] = (len(changes), arms)
        return arms

    def model_catalogue(self, history: Sequence[Outcome], catalogue: Catalogue) -> Catalogue:
        """The catalogue the model is fit on: with hours, every hour posted at as well as the
        ones allowed next (the choice stays among those)."""
        full = dict(catalogue)
        if "hour" in catalogue:
            seen = {o.arms["hour"] for o in history if "hour" in o.arms}
            full["hour"] = sorted(seen | set(catalogue["hour"]))
        return full

    def posterior(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        state: JointState | None = None,
    ) -> tuple[JointPosterior, JointState]:
        """The posterior of the model fit on ``history`` (after looking for changes, when that is
        on), and the state for the next call."""
        state = JointState() if state is None else state
        if state.forgetting is not None:
            return self._forgetful(history, catalogue, now, state)
        for _ in range(CHANGES_PER_PLAN):
            posterior, done, rows, auxiliary_rows, state = self._fit(history, catalogue, now, state)
            change, state = self._detect(posterior, catalogue, done, rows, auxiliary_rows, state)
            if self._gate_opens(state):
                return self._forgetful(history, catalogue, now, replace(state, forgetting=now))
            if change is None:
                return replace(posterior, carry=self.carry_auxiliary), state
            # the design and every cached row change
            state = JointState(changes=(*state.changes, change), peak=state.peak)
        posterior, *_, state = self._fit(history, catalogue, now, state)
        return replace(posterior, carry=self.carry_auxiliary), state

    def _gate_opens(self, state: JointState) -> bool:
        """Whether the drop statistic seen so far opens the forgetting gate."""
        gate = self.forget_threshold
        return gate is not None and self.half_life_days is None and state.peak > gate

    def _forgetful(
        self, history: Sequence[Outcome], catalogue: Catalogue, now: datetime, state: JointState
    ) -> tuple[JointPosterior, JointState]:
        """The posterior once the gate is open: the same model with a half-life of
        ``forget_half_life_days`` (its rows' weights change at every plan: no cached rows, no
        fold), and no further test."""
        forgetful = replace(
            self,
            half_life_days=self.forget_half_life_days,
            forget_threshold=None,
            change_threshold=None,
        )
        opened = state.forgetting
        if state.rows or state.fold is not None:
            state = replace(state, rows={}, fold=None)
        posterior, *_, state = forgetful._fit(history, catalogue, now, state)
        return replace(posterior, carry=self.carry_auxiliary), replace(state, forgetting=opened)

    def _fit(
        self, history: Sequence[Outcome], catalogue: Catalogue, now: datetime, state: JointState
    ) -> tuple[JointPosterior, list[Outcome], list[Row], list[Row] | None, JointState]:
        """The posterior, the finished posts, their objective and auxiliary rows, the state."""
        done = finished(history)
        interaction = _interaction(self.interaction, catalogue)
        full = _with_eras(catalogue, state.changes)
        retired = frozenset(full) - frozenset(catalogue)
        ref = self._reference(history)
        covariate = ref is not None
        if state.reference != ref:  # cached rows carry z relative to the reference
            state = replace(state, reference=ref, rows={})
        work = _Pass(state)
        kept = state.rows
        auxiliary_rows: list[Row] | None = None
        finished_auxiliary: list[Row] | None = None
        folded: Fold | None = None
        window_auxiliary: list[Row] = []
        if self.objective == "engagement":
            finals = [
                Row(self.arms(o, work), o.engagements, self.weight(o, now), _z(o, ref), o.key)
                for o in done
            ]
            rows = finals + self._provisional(history, now, work, _engagements)
        else:
            signal = auxiliary(history)
            folded = self._usable_fold(state, done, signal, full, interaction, covariate)
            m = 0 if folded is None else folded.objective.count
            # with change detection on, every post's rows are needed (its scan); else the window's
            every = folded is None or self._testing()
            finals, finished_auxiliary, kept = self._finished_rows(
                done if every else done[m:], signal, now, work
            )
            rows = finals[m:] if every else finals
            window_auxiliary = finished_auxiliary[m:] if every else finished_auxiliary
            totals = None
            if folded is not None:
                totals = (folded.signal_total + sum(signal(o) for o in done[m:]), len(done))
            auxiliary_rows = window_auxiliary + self._provisional(
                history, now, work, signal, totals
            )
        posterior, fitted = self._fit_joint(
            full, rows, auxiliary_rows, interaction, state.fit, covariate, folded
        )
        state = replace(work.done(), fit=fitted, rows=kept)
        window = self.fold_window
        if self.objective != "engagement" and self.half_life_days is None and window is not None:
            more = _folded_more(
                folded, posterior, done, rows, window_auxiliary, signal, state, window
            )
            state = replace(state, fold=more)
        posterior = posterior.retire(retired, _z_now(history, ref))
        return posterior, done, finals, finished_auxiliary, state

    def _usable_fold(
        self,
        state: JointState,
        done: Sequence[Outcome],
        signal: Callable[[Outcome], float],
        catalogue: Mapping[str, Sequence[str]],
        interaction: Pairs | None,
        covariate: bool,
    ) -> Fold | None:
        """The state's fold, if this plan may use it: its posts still the first finished ones,
        unchanged, under the same signal, reference, changes and columns, and no re-estimate
        of the empirical-Bayes spreads due (those plans, and a design of another size, which
        starts afresh, fit every post, then fold anew)."""
        kept = state.fold
        if kept is None or self.fold_window is None:
            return None
        if self.half_life_days is not None or self.objective == "engagement":
            return None
        if (
            kept.signal is not signal
            or kept.reference != state.reference
            or kept.changes != state.changes
            or refresh_due(state.fit.hyper, len(done))
        ):
            return None
        m = len(kept.outcomes)
        if len(done) < m + self.fold_window:
            return None
        prefix = done[:m]
        if not all(map(operator.is_, prefix, kept.outcomes)) and tuple(prefix) != kept.outcomes:
            return None  # a folded post changed (a late correction): fit every post again
        design = _design(state.fit, catalogue, interaction, covariate)
        if design.size != state.fit.size:
            return None  # a design of another size starts afresh, spreads re-estimated
        if not set(kept.objective.labels) <= set(design.labels()):
            return None  # an arm left the catalogue: its column is gone
        return kept

    def _fit_joint(
        self,
        catalogue: Mapping[str, Sequence[str]],
        rows: Sequence[Row],
        auxiliary_rows: Sequence[Row] | None,
        interaction: Pairs | None,
        state: FitState,
        covariate: bool,
        folded: Fold | None = None,
    ) -> tuple[JointPosterior, FitState]:
        """:func:`fit_joint`, or the same fit from the memo when there are no rows at all."""
        key: Hashable = None
        if self.memo is not None and not rows and not auxiliary_rows and folded is None:
            key = (
                tuple((d, tuple(arms)) for d, arms in catalogue.items()),
                interaction,
                covariate,
                self.negbin,
                fit_state_key(state),
            )
            found = self.memo.get(key)
            if found is not None:
                return found
        fitted = fit_joint(
            catalogue,
            rows,
            auxiliary_rows,
            interaction=interaction,
            state=state,
            covariate=covariate,
            negbin=self.negbin,
            objective_folded=None if folded is None else folded.objective,
            engagement_folded=None if folded is None else folded.auxiliary,
        )
        if key is not None and self.memo is not None:
            self.memo.put(key, fitted)
        return fitted

    def _reference(self, history: Sequence[Outcome]) -> float | None:
        """The audience the covariate is measured from (the first post's), or None when it is
        off or some post's audience is unknown."""
        if not self.audience or not history or any(not o.audience for o in history):
            return None
        return float(history[0].audience)  # type: ignore[arg-type]

    def _detect(
        self,
        posterior: JointPosterior,
        catalogue: Catalogue,
        done: Sequence[Outcome],
        rows: Sequence[Row],
        auxiliary_rows: Sequence[Row] | None,
        state: JointState,
    ) -> tuple[Change | None, JointState]:
        """The clearest drop in one arm's posts since its dimension's last split, if any passes
        the threshold (:func:`learning.drift.detect`), and the state with the peak seen."""
        if not self._testing() or len(done) < 2 * MIN_CHANGE_POSTS:
            return None, state
        order = sorted(range(len(done)), key=lambda i: done[i].posted_at)
        times = [done[i].posted_at for i in order]
        objective = _series(posterior.fit, rows, order)
        aux = None
        if auxiliary_rows is not None and posterior.engagement is not None:
            aux = _series(posterior.engagement, auxiliary_rows, order)
        splits = _splits(state.changes)
        best: Change | None = None
        for dimension in catalogue:
            arms = [done[i].arms.get(dimension, "") for i in order]
            since = splits[dimension][-1] if dimension in splits else None
            change = detect(arms, times, dimension, objective, aux, 0.0, since)
            if change is not None and (best is None or change.statistic > best.statistic):
                best = change
        if best is not None:  # how close the history came to a split (reports, calibration)
            state = replace(state, peak=max(state.peak, best.statistic))
        threshold = self.change_threshold
        if best is not None and threshold is not None and best.statistic > threshold:
            return best, state
        return None, state

    def _testing(self) -> bool:
        """Whether plans scan for drops (to split at them, or to open the forgetting gate)."""
        gated = self.forget_threshold is not None and self.half_life_days is None
        return self.change_threshold is not None or gated

    def _finished_rows(
        self,
        done: Sequence[Outcome],
        signal: Callable[[Outcome], float],
        now: datetime,
        work: _Pass,
    ) -> tuple[list[Row], list[Row], Mapping[int, tuple[Outcome, Callable[..., float], Row, Row]]]:
        """The finished posts' objective and auxiliary rows, and the rows to keep. Without a
        half-life a post's rows never change, so they are kept (by content id) for the next
        plan."""
        ref = work.state.reference
        if self.half_life_days is not None:
            return (
                [
                    Row(
                        self.arms(o, work),
                        max(float(o.reward or 0.0), 0.0),
                        self.weight(o, now),
                        _z(o, ref),
                        o.key,
                    )
                    for o in done
                ],
                [
                    Row(self.arms(o, work), signal(o), self.weight(o, now), _z(o, ref), o.key)
                    for o in done
                ],
                {},
            )
        cache = work.state.rows
        kept: dict[int, tuple[Outcome, Callable[[Outcome], float], Row, Row]] = {}
        rows, auxiliary_rows = [], []
        for o in done:
            known = cache.get(o.key) if o.key is not None else None
            if known is None or known[1] is not signal or known[0] != o:
                arms, z = self.arms(o, work), _z(o, ref)
                objective = Row(arms, max(float(o.reward or 0.0), 0.0), z=z, key=o.key)
                known = (o, signal, objective, Row(arms, signal(o), z=z, key=o.key))
            if o.key is not None:
                kept[o.key] = known
            rows.append(known[2])
            auxiliary_rows.append(known[3])
        return rows, auxiliary_rows, kept

    def _provisional(
        self,
        history: Sequence[Outcome],
        now: datetime,
        work: _Pass,
        signal: Callable[[Outcome], float] | None = None,
        totals: tuple[float, int] | None = None,
    ) -> list[Row]:
        """In-flight posts' engagement, scaled to the final by the share seen at their age.

        The share at ``h`` hours is estimated cross-sectionally: the mean engagement of posts last
        seen at about ``h`` hours over the mean final engagement. A post counts with weight equal
        to that share (its partial count carries less information than a final one).
        ``totals``: the finished posts' signal sum and number, when the caller has them.
        """
        if not self.provisional:
            return []
        signal = signal or _engagements
        pending = [o for o in history if not o.final and o.hours_observed is not None]
        if totals is None:
            finals = [signal(o) for o in history if o.final]
            count, final_mean = len(finals), float(np.mean(finals)) if finals else 0.0
        else:
            count, final_mean = totals[1], totals[0] / max(totals[1], 1)
        if count < 5 or not pending:
            return []
        if final_mean <= 0:
            return []
        buckets: dict[int, list[float]] = {}
        for o in pending:
            buckets.setdefault(_bucket(o.hours_observed), []).append(signal(o))
        share = {
            b: min(max(float(np.mean(v)) / final_mean, PROVISIONAL_MIN_SHARE), 1.0)
            for b, v in buckets.items()
        }
        ref = work.state.reference
        rows = []
        for o in pending:
            s = share[_bucket(o.hours_observed)]
            weight = s * self.weight(o, now)
            rows.append(Row(self.arms(o, work), signal(o) / s, weight, _z(o, ref), o.key))
        return rows

    def choose(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
        state: JointState | None = None,
    ) -> tuple[dict[str, str], JointState]:
        """A Thompson draw's best arms (among ``catalogue``), and the state for the next plan."""
        full = self.model_catalogue(history, catalogue)
        posterior, state = self.posterior(history, full, now, state)
        return posterior.best(posterior.sample(rng, self.exploration), allowed=catalogue), state

    def estimates(
        self,
        history: Sequence[Outcome],
        catalogue: Catalogue,
        now: datetime,
        rng: np.random.Generator,
        state: JointState | None = None,
    ) -> Estimates:
        """The model's belief per arm of every dimension it chooses: the mean and 90% interval of
        :meth:`JointPosterior.arm_table`, and the share of ``DRAWS`` posterior draws (from
        ``rng``, never the generator choices are drawn with) in which the arm is best. ``state``
        is read, not advanced: the next choice sees the same state either way."""
        full = self.model_catalogue(history, catalogue)
        posterior, _unused = self.posterior(history, full, now, state)
        cov = posterior.draw_cov()  # once: every dimension's table and draws share it
        posted = [o.arms for o in finished(history)]
        dimensions = {}
        for dimension in posterior.dimensions():
            names, vectors = posterior.contrasts(dimension)
            best = p_best(posterior.contrast_draws(vectors, rng, DRAWS, cov))
            table = posterior.arm_table(dimension, cov=cov)
            posts = posts_per_arm(posted, dimension, names)
            share = dict(zip(names, best, strict=True))
            dimensions[dimension] = ranked(
                [
                    ArmEstimate(
                        arm=arm,
                        posts=posts[arm],
                        mean=mean,
                        low=low,
                        high=high,
                        p_best=float(share[arm]),
                    )
                    for arm, mean, low, high in table
                ]
            )
        return Estimates(model=self.name, unit=unit(self.objective), dimensions=dimensions)


def _interaction(wanted: Pairs | None, catalogue: Catalogue) -> Pairs | None:
    """The pairs of dimensions given interaction terms, of those ``wanted`` whose dimensions
    are both in ``catalogue`` (as given when all are: one pair stays one pair)."""
    sets = pair_sets(wanted)
    kept = tuple(p for p in sets if p[0] in catalogue and p[1] in catalogue)
    if not kept:
        return None
    return wanted if len(kept) == len(sets) else kept


def _splits(changes: Sequence[Change]) -> dict[str, list[datetime]]:
    out: dict[str, list[datetime]] = {}
    for change in changes:
        out.setdefault(change.dimension, []).append(change.at)
    return {d: sorted(v) for d, v in out.items()}


def _with_eras(catalogue: Catalogue, changes: Sequence[Change]) -> dict[str, Sequence[str]]:
    """The catalogue with every retired era's dimension added."""
    full = dict(catalogue)
    for dimension, splits in _splits(changes).items():
        for era in range(len(splits)):
            full[f"{dimension}@{era}"] = catalogue.get(dimension, ())
    return full


def _z(o: Outcome, reference: float | None) -> float:
    """The audience covariate of a post: log of its audience over the reference."""
    return math.log(o.audience / reference) if reference and o.audience else 0.0


def _z_now(history: Sequence[Outcome], reference: float | None) -> float:
    return _z(history[-1], reference) if history else 0.0


MIN_CHANGE_POSTS = 8


def _series(fit: Fit, rows: Sequence[Row], order: Sequence[int]) -> Series:
    """Counts and fitted means of these rows under a fit, in ``order``, with the dispersion
    the drop test uses (for negative binomial counts, the variance's average excess over
    Poisson)."""
    mu = np.exp(np.clip(fit.design.rows_layout(rows).eta(fit.mean), -30.0, 30.0))
    y = np.array([r.value for r in rows], dtype=float)
    index = np.asarray(order, dtype=np.intp)
    phi = fit.dispersion
    if math.isfinite(fit.shape):  # negative binomial: its variance over mu, averaged by mu
        phi *= float(np.sum(mu * (1.0 + mu / fit.shape)) / max(float(np.sum(mu)), 1e-12))
    return Series(y[index], mu[index], phi)


def _engagements(o: Outcome) -> float:
    return o.engagements


def _profile_clicks(o: Outcome) -> float:
    return o.profile_clicks


def auxiliary(history: Sequence[Outcome]) -> Callable[[Outcome], float]:
    """The auxiliary signal the follower model borrows from: profile clicks where the platform
    reports them (a visit to the profile is the step before a follow, so they track follows
    closely and come in several times the numbers), else likes + reposts + replies + quotes +
    bookmarks."""
    if any(o.profile_clicks > 0 for o in history):
        return _profile_clicks
    return _engagements


def _bucket(hours: float | None) -> int:
    """Log-spaced age buckets (0: under 2 h, 1: under 8 h, 2: older)."""
    h = hours or 0.0
    return 0 if h < 2 else (1 if h < 8 else 2)


def _design(
    fit_state: FitState,
    catalogue: Mapping[str, Sequence[str]],
    interaction: Pairs | None,
    covariate: bool,
) -> Design:
    """The design :func:`fit_joint` will use (the state's, when it still fits)."""
    wanted = {d: list(arms) for d, arms in catalogue.items()}
    design = fit_state.design
    if (
        design is None
        or design.catalogue != wanted
        or design.pairs != interaction
        or design.covariate != covariate
    ):
        design = Design(wanted, interaction, covariate)
    return design


def _folded_more(
    folded: Fold | None,
    posterior: JointPosterior,
    done: Sequence[Outcome],
    rows: Sequence[Row],
    auxiliary_rows: Sequence[Row],
    signal: Callable[[Outcome], float],
    state: JointState,
    window: int,
) -> Fold | None:
    """The fold for the next plan: ``folded`` (the one this plan used, None: it fit every
    post), with the oldest of the window's posts (``rows``, ``auxiliary_rows``: the finished
    posts after the fold) folded in at this plan's modes once the window passed
    ``window + FOLD_BATCH``."""
    eng = posterior.engagement
    start = 0 if folded is None else len(folded.outcomes)
    cut = len(rows) - window
    if eng is None or len(auxiliary_rows) != len(rows) or cut < FOLD_BATCH:
        return folded
    fit_ = posterior.fit
    design = fit_.design
    # at the shapes the next fits use (a plan that re-estimated them fit under the old ones)
    objective = fold(design, rows[:cut], fit_.mean, shape=fit_.next_shape)
    aux = fold(design, auxiliary_rows[:cut], eng.mean, shape=eng.next_shape)
    moved = done[start : start + cut]
    total = sum(signal(o) for o in moved)
    if folded is not None:
        old_objective, old_aux = folded.objective.on(design), folded.auxiliary.on(design)
        if old_objective is None or old_aux is None:  # cannot happen: the fit used them
            return None
        objective, aux = old_objective.plus(objective), old_aux.plus(aux)
        total += folded.signal_total
    return Fold(
        outcomes=(() if folded is None else folded.outcomes) + tuple(moved),
        objective=objective,
        auxiliary=aux,
        signal=signal,
        reference=state.reference,
        changes=state.changes,
        signal_total=total,
    )
