"""Environment assignments: one-hot, masses, masks, measures, split halves and split gradients."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tolerance import f32_tol
from absl.testing import parameterized

import jaxirm
from jaxirm.losses import bce_with_logits, scale_derivative, softmax_cross_entropy

LABELS = np.array([2, 0, 2, 2, 4, 0, 2, 4, 4])  # envs 1 and 3 are empty (padding)
NUM_ENVS = 5


class EnvsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_one_hot(self):
        got = self.variant(lambda e: jaxirm.one_hot(e, NUM_ENVS))(jnp.asarray(LABELS))
        np.testing.assert_array_equal(got, np.eye(NUM_ENVS)[LABELS])
        self.assertEqual(got.dtype, jnp.float32)
        got16 = self.variant(lambda e: jaxirm.one_hot(e, 3, dtype=jnp.bfloat16))(jnp.array([1, 0]))
        self.assertEqual(got16.dtype, jnp.bfloat16)

    @chex.variants(with_jit=True, without_jit=True)
    def test_mass_and_mask_with_labels(self):
        mass, mask = self.variant(lambda e: (jaxirm.env_mass(e, NUM_ENVS), jaxirm.env_mask(e, NUM_ENVS)))(
            jnp.asarray(LABELS)
        )
        np.testing.assert_array_equal(mass, np.bincount(LABELS, minlength=NUM_ENVS))
        np.testing.assert_array_equal(mask, [True, False, True, False, True])

    @chex.variants(with_jit=True, without_jit=True)
    def test_mass_and_mask_with_weights(self):
        weights = np.random.default_rng(0).uniform(0.0, 1.0, size=(6, 4)).astype(np.float32)
        weights[:, 2] = 0.0
        mass, mask = self.variant(lambda a: (jaxirm.env_mass(a), jaxirm.env_mask(a)))(jnp.asarray(weights))
        # two float32 sums of 6 positive terms: ≤ 2·6·eps32 relative apart
        np.testing.assert_allclose(mass, weights.sum(0), rtol=f32_tol(6))
        np.testing.assert_array_equal(mask, [True, True, False, True])

    @chex.variants(with_jit=True, without_jit=True)
    def test_measures_with_labels(self):
        fn = self.variant(
            lambda e: (
                jaxirm.env_measure(e, NUM_ENVS),
                jaxirm.env_measure(e, NUM_ENVS, kind="uniform"),
                jaxirm.env_measure(e, NUM_ENVS, kind="empirical"),
            )
        )
        default, uniform, empirical = fn(jnp.asarray(LABELS))
        # exact counts, one float32 quotient: eps32/2 relative
        np.testing.assert_allclose(default, [1 / 3, 0, 1 / 3, 0, 1 / 3], rtol=f32_tol(1))
        np.testing.assert_array_equal(uniform, default)
        np.testing.assert_allclose(empirical, [2 / 9, 0, 4 / 9, 0, 3 / 9], rtol=f32_tol(1))  # as above

    @chex.variants(with_jit=True, without_jit=True)
    def test_measures_with_weights(self):
        weights = np.random.default_rng(1).uniform(0.0, 1.0, size=(7, 4))
        weights[:, 1] = 0.0
        weights[3] = 0.0  # a padding example
        fn = self.variant(
            lambda a: (
                jaxirm.env_measure(a),
                jaxirm.env_measure(a, kind="empirical"),
                jaxirm.env_measure(a, 4),
            )
        )
        uniform, empirical, with_num = fn(jnp.asarray(weights, jnp.float32))
        np.testing.assert_allclose(uniform, [1 / 3, 0, 1 / 3, 1 / 3], rtol=f32_tol(1))  # one quotient
        # float32 inputs (1 rounding), a 7-term and a 4-term positive sum, a quotient: ≤ 13·eps32 relative
        np.testing.assert_allclose(empirical, weights.sum(0) / weights.sum(), rtol=f32_tol(13))
        np.testing.assert_array_equal(with_num, uniform)

    @chex.variants(with_jit=True, without_jit=True)
    def test_all_zero_weights_give_zero_measure(self):
        fn = self.variant(lambda a: (jaxirm.env_measure(a), jaxirm.env_measure(a, kind="empirical")))
        for measure in fn(jnp.zeros((4, 3))):
            np.testing.assert_array_equal(measure, np.zeros(3))

    def test_empirical_measure_is_differentiable_in_weights(self):
        weights = jnp.asarray(np.random.default_rng(2).uniform(0.1, 1.0, size=(5, 3)), jnp.float32)
        jac = jax.jit(jax.jacrev(lambda a: jaxirm.env_measure(a, kind="empirical")))(weights)
        m = np.asarray(weights).sum(0)
        total = m.sum()
        # ∂μ_e/∂A_ik = (δ_ek − μ_e) / Σm, the same for every row i
        expected = (np.eye(3) - (m / total)[:, None]) / total
        for i in range(5):
            # float32: two sums of ≤ 15 positive terms, a few products and quotients: ≤ 20·eps32·|terms|,
            # the terms being of size 1/Σm (so the bound is absolute, also where δ − μ nearly cancels)
            np.testing.assert_allclose(jac[:, i, :], expected, rtol=0, atol=f32_tol(20, 2.0 / total))
        # the uniform measure is piecewise constant in the weights
        jac_u = jax.jit(jax.jacrev(lambda a: jaxirm.env_measure(a)))(weights)
        np.testing.assert_array_equal(jac_u, np.zeros_like(jac_u))


def _np_split_halves(labels):
    """Alternates within each env in order of appearance: the i-th example of env e goes to half i % 2."""
    seen = {}
    halves = []
    for e in labels.tolist():
        halves.append(seen.get(e, 0) % 2)
        seen[e] = seen.get(e, 0) + 1
    return np.array(halves)


class SplitHalvesTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(
        ("padding_envs", LABELS, NUM_ENVS),
        ("random", np.random.default_rng(3).integers(0, 4, 31), 4),
        ("singletons", np.array([0, 1, 2, 2, 2]), 3),
    )
    def test_labels_alternate_within_each_env(self, labels, num_envs):
        halves = self.variant(lambda e: jaxirm.split_halves(e, num_envs))(jnp.asarray(labels))
        self.assertEqual(halves.dtype, jnp.int32)
        np.testing.assert_array_equal(halves, _np_split_halves(labels))
        for e in range(num_envs):  # every env with >= 2 examples has both halves, balanced
            h = np.asarray(halves)[labels == e]
            if h.size >= 2:
                self.assertEqual(set(h.tolist()), {0, 1})
            self.assertIn(int((h == 0).sum() - (h == 1).sum()), (0, 1))

    @chex.variants(with_jit=True, without_jit=True)
    def test_weights_alternate_over_rows(self):
        halves = self.variant(jaxirm.split_halves)(jnp.ones((7, 3)))
        np.testing.assert_array_equal(halves, [0, 1, 0, 1, 0, 1, 0])


# ----------------------------------------------------------------------------------------------------------
# split_scale_grads against scale_grads on the corresponding subsets.


def _problem(loss_fn, n, seed):
    rng = np.random.default_rng(seed)
    if loss_fn is softmax_cross_entropy:
        f, y = 2.0 * rng.normal(size=(n, 3)), rng.integers(0, 3, n)
    else:
        f, y = 2.0 * rng.normal(size=n), rng.integers(0, 2, n).astype(np.float32)
    return jnp.asarray(f, jnp.float32), jnp.asarray(y)


@pytest.mark.parametrize("loss_fn", [bce_with_logits, softmax_cross_entropy], ids=["bce", "ce"])
def test_split_scale_grads_match_subsets_with_labels(loss_fn):
    f, y = _problem(loss_fn, 13, seed=4)
    labels = np.array([0, 1, 1, 0, 2, 1, 0, 0, 1, 2, 0, 1, 3])  # env 3 has one example, env 4 none
    split = jax.jit(lambda a, b, e: jaxirm.split_scale_grads(loss_fn, a, b, e, num_envs=5))(
        f, y, jnp.asarray(labels)
    )
    chex.assert_shape(split, (2, 5))
    halves = _np_split_halves(labels)
    full_fn = jax.jit(lambda a, b, e: jaxirm.scale_grads(loss_fn, a, b, e, num_envs=5))
    # means of ≤ 13 float32 derivatives, each a few roundings (≤ 6·eps32): ≤ 4·(13 + 6)·eps32·max|d_i|
    tol = f32_tol(13 + 6, np.abs(np.asarray(scale_derivative(loss_fn, f, y))).max())
    for h in (0, 1):
        rows = halves == h
        expected = full_fn(f[rows], y[rows], jnp.asarray(labels[rows]))
        np.testing.assert_allclose(split[h], expected, rtol=0, atol=tol)
    # env 3's single example is in half a; half b has nothing there, nor has env 4 anywhere
    assert split[0, 3] != 0.0 and split[1, 3] == 0.0
    np.testing.assert_array_equal(split[:, 4], [0.0, 0.0])


@pytest.mark.parametrize("loss_fn", [bce_with_logits, softmax_cross_entropy], ids=["bce", "ce"])
def test_split_scale_grads_match_subsets_with_weights(loss_fn):
    f, y = _problem(loss_fn, 11, seed=5)
    weights = jnp.asarray(np.random.default_rng(6).uniform(0.1, 1.0, size=(11, 3)), jnp.float32)
    split = jax.jit(lambda a, b, w: jaxirm.split_scale_grads(loss_fn, a, b, w))(f, y, weights)
    chex.assert_shape(split, (2, 3))
    full_fn = jax.jit(lambda a, b, w: jaxirm.scale_grads(loss_fn, a, b, w))
    # weighted means Σ w d / Σ w of ≤ 11 derivatives (≤ 6 roundings each): numerator and denominator are
    # each within 11·eps32 of Σ w|d| and Σ w, so the means within (2·11 + 7)·eps32·max|d|
    tol = f32_tol(2 * 11 + 7, np.abs(np.asarray(scale_derivative(loss_fn, f, y))).max())
    np.testing.assert_allclose(split[0], full_fn(f[0::2], y[0::2], weights[0::2]), rtol=0, atol=tol)
    np.testing.assert_allclose(split[1], full_fn(f[1::2], y[1::2], weights[1::2]), rtol=0, atol=tol)


def test_split_scale_grads_with_explicit_halves():
    f, y = _problem(bce_with_logits, 10, seed=7)
    labels = jnp.asarray(np.arange(10) % 2)
    halves = np.array([1, 1, 0, 0, 1, 0, 0, 1, 1, 0])
    d = np.asarray(scale_derivative(bce_with_logits, f, y))
    expected = np.array(
        [[d[(halves == h) & (np.asarray(labels) == e)].mean() for e in range(2)] for h in (0, 1)]
    )
    fn = jax.jit(lambda hv: jaxirm.split_scale_grads(bce_with_logits, f, y, labels, num_envs=2, halves=hv))
    tol = f32_tol(10 + 6, np.abs(d).max())  # means of ≤ 10 float32 derivatives of ≤ 6 roundings each
    np.testing.assert_allclose(fn(jnp.asarray(halves)), expected, rtol=0, atol=tol)
    np.testing.assert_allclose(fn(jnp.asarray(halves, bool)), expected, rtol=0, atol=tol)
    # weights with the same explicit halves: one-hot weights must give the same numbers
    onehot = jaxirm.one_hot(labels, 2)
    got_w = jax.jit(lambda hv: jaxirm.split_scale_grads(bce_with_logits, f, y, onehot, halves=hv))(
        jnp.asarray(halves)
    )
    np.testing.assert_allclose(got_w, expected, rtol=0, atol=tol)  # the same bound


def test_split_rows_average_back_to_full_grads_with_equal_halves():
    """With equal masses in both halves, g_e = (g^a_e + g^b_e) / 2."""
    f, y = _problem(bce_with_logits, 12, seed=8)
    labels = jnp.asarray(np.repeat([0, 1, 2], 4))
    split, full = jax.jit(
        lambda a, b: (
            jaxirm.split_scale_grads(bce_with_logits, a, b, labels, num_envs=3),
            jaxirm.scale_grads(bce_with_logits, a, b, labels, num_envs=3),
        )
    )(f, y)
    # means of 4 (halves) and 2 (their mean) against means of 4 float32 derivatives: ≤ 4·(4 + 2 + 6)·eps32
    np.testing.assert_allclose(
        split.mean(0),
        full,
        rtol=0,
        atol=f32_tol(4 + 2 + 6, np.abs(np.asarray(scale_derivative(bce_with_logits, f, y))).max()),
    )
