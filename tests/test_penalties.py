"""Penalties of the dummy-scale gradients: formulas, TV inequalities, subgradients and split estimators."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _tolerance import f32_tol
from absl.testing import parameterized

import jaxirm
from jaxirm.losses import bce_with_logits, scale_derivative

FUNCTIONS = {"tv_l2": jaxirm.tv_l2, "tv_l1": jaxirm.tv_l1, "vrex": jaxirm.vrex}
PENALTIES = tuple((name, name) for name in FUNCTIONS)


def _np_penalty(name, g, mu):
    """The formulas of DESIGN.md section 3, in numpy."""
    if name == "tv_l2":
        return np.sum(mu * g**2)
    if name == "tv_l1":
        return np.sum(mu * np.abs(g)) ** 2
    mean = np.average(g, weights=mu)
    return np.average((g - mean) ** 2, weights=mu)


def _random_measure(rng, num_envs):
    mu = rng.uniform(0.1, 1.0, size=num_envs)
    return mu / mu.sum()


class PenaltyFormulaTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.enter_context(jax.enable_x64(True))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*PENALTIES)
    def test_matches_formula_with_and_without_measure(self, name):
        rng = np.random.default_rng(0)
        g = rng.normal(size=5)
        mu = _random_measure(rng, 5)
        fn = self.variant(FUNCTIONS[name])
        np.testing.assert_allclose(fn(jnp.asarray(g), jnp.asarray(mu)), _np_penalty(name, g, mu), rtol=1e-12)
        np.testing.assert_allclose(fn(jnp.asarray(g)), _np_penalty(name, g, np.full(5, 0.2)), rtol=1e-12)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*PENALTIES)
    def test_uniform_default_equals_explicit_measure(self, name):
        penalty = FUNCTIONS[name]
        g = jnp.asarray(np.random.default_rng(1).normal(size=4))
        fn = self.variant(penalty)
        np.testing.assert_allclose(fn(g), fn(g, jnp.full(4, 0.25)), rtol=1e-15)
        self.assertNotAlmostEqual(float(fn(g)), float(fn(g, jnp.array([0.7, 0.1, 0.1, 0.1]))), places=6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*PENALTIES)
    def test_nonnegative_and_zero_at_zero(self, name):
        penalty = FUNCTIONS[name]
        fn = self.variant(penalty)
        rng = np.random.default_rng(2)
        for _ in range(5):
            g = jnp.asarray(rng.normal(size=6) * rng.choice([1e-3, 1.0, 1e3]))
            self.assertGreaterEqual(float(fn(g, jnp.asarray(_random_measure(rng, 6)))), 0.0)
        self.assertEqual(float(fn(jnp.zeros(6))), 0.0)
        self.assertEqual(float(fn(jnp.zeros(6), jnp.asarray(_random_measure(rng, 6)))), 0.0)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*PENALTIES)
    def test_permutation_invariance(self, name):
        penalty = FUNCTIONS[name]
        rng = np.random.default_rng(3)
        g, mu = rng.normal(size=7), _random_measure(rng, 7)
        perm = rng.permutation(7)
        fn = self.variant(penalty)
        a = fn(jnp.asarray(g), jnp.asarray(mu))
        b = fn(jnp.asarray(g[perm]), jnp.asarray(mu[perm]))
        np.testing.assert_allclose(a, b, rtol=1e-13)
        # permuting g alone (a different measure on each value) does change it
        self.assertGreater(abs(float(fn(jnp.asarray(g[perm]), jnp.asarray(mu))) - float(a)), 1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    def test_tv_l1_at_most_tv_l2(self):
        fn = self.variant(lambda g, mu: (jaxirm.tv_l1(g, mu), jaxirm.tv_l2(g, mu)))
        rng = np.random.default_rng(4)
        for num_envs in (1, 2, 5, 9):
            for _ in range(4):
                g, mu = rng.normal(size=num_envs), _random_measure(rng, num_envs)
                l1, l2 = fn(jnp.asarray(g), jnp.asarray(mu))
                self.assertLessEqual(float(l1), float(l2) * (1 + 1e-12))
                if num_envs > 1:  # Jensen is strict unless |g| is constant on the support
                    self.assertLess(float(l1), float(l2))

    @chex.variants(with_jit=True, without_jit=True)
    def test_tv_l1_equals_tv_l2_when_abs_g_is_constant(self):
        fn = self.variant(lambda g, mu: (jaxirm.tv_l1(g, mu), jaxirm.tv_l2(g, mu)))
        g = jnp.array([0.7, -0.7, 0.7, -0.7, -0.7])
        for mu in (jnp.full(5, 0.2), jnp.array([0.1, 0.4, 0.2, 0.2, 0.1])):
            l1, l2 = fn(g, mu)
            np.testing.assert_allclose(l1, 0.49, rtol=1e-14)
            np.testing.assert_allclose(l2, 0.49, rtol=1e-14)
        # |g| constant on the support of μ only: an env with μ_e = 0 does not count
        l1, l2 = fn(jnp.array([0.7, -0.7, 5.0]), jnp.array([0.5, 0.5, 0.0]))
        np.testing.assert_allclose(l1, l2, rtol=1e-14)

    @chex.variants(with_jit=True, without_jit=True)
    def test_vrex_is_weighted_variance(self):
        rng = np.random.default_rng(5)
        r, mu = rng.uniform(0.1, 2.0, size=6), _random_measure(rng, 6)
        got = self.variant(jaxirm.vrex)(jnp.asarray(r), jnp.asarray(mu))
        # E[R²] − E[R]², a different formula from the centred one used in the library
        np.testing.assert_allclose(got, np.sum(mu * r**2) - np.sum(mu * r) ** 2, rtol=1e-10)
        np.testing.assert_allclose(self.variant(jaxirm.vrex)(jnp.full(6, 1.3)), 0.0, atol=1e-28)
        np.testing.assert_allclose(self.variant(jaxirm.vrex)(jnp.array([1.0, 3.0])), 1.0)


class SubgradientTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_tv_l1_subgradient_of_abs_at_zero_is_zero(self):
        g = jnp.array([0.0, 0.5, -1.5, 0.0])
        mu = jnp.array([0.1, 0.2, 0.3, 0.4])
        grad = self.variant(jax.grad(jaxirm.tv_l1))(g, mu)
        s = 0.2 * 0.5 + 0.3 * 1.5  # Σ μ|g|
        # d/dg_e (Σ μ|g|)² = 2 s μ_e sign(g_e), with sign(0) = 0; float32: μ and g rounded, a 4-term
        # positive sum and 3 products: ≤ 8·eps32 relative
        np.testing.assert_allclose(grad, [0.0, 2 * s * 0.2, -2 * s * 0.3, 0.0], rtol=f32_tol(8))
        self.assertEqual(float(grad[0]), 0.0)
        self.assertEqual(float(grad[3]), 0.0)

    def test_jnp_abs_would_be_caught(self):
        """jax.grad(jnp.abs)(0.) is 1, so a tv_l1 built on jnp.abs fails the test above."""
        self.assertEqual(float(jax.grad(jnp.abs)(0.0)), 1.0)
        naive = jax.grad(lambda g: jnp.mean(jnp.abs(g)) ** 2)(jnp.array([0.0, 0.5]))
        self.assertNotEqual(float(naive[0]), 0.0)
        self.assertEqual(float(jax.grad(jaxirm.penalties.abs0)(0.0)), 0.0)
        np.testing.assert_array_equal(
            jax.vmap(jax.grad(jaxirm.penalties.abs0))(jnp.array([-2.0, 0.0, 3.0])), [-1.0, 0.0, 1.0]
        )

    @chex.variants(with_jit=True, without_jit=True)
    def test_tv_l1_gradient_at_all_zero_is_zero(self):
        grad = self.variant(jax.grad(jaxirm.tv_l1))(jnp.zeros(3))
        np.testing.assert_array_equal(grad, np.zeros(3))


class SplitEstimatorTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.enter_context(jax.enable_x64(True))

    @chex.variants(with_jit=True, without_jit=True)
    def test_equal_halves_give_the_full_penalty(self):
        rng = np.random.default_rng(6)
        g, mu = jnp.asarray(rng.normal(size=5)), jnp.asarray(_random_measure(rng, 5))
        both = jnp.stack([g, g])
        split = self.variant(lambda s, m: (jaxirm.tv_l2_split(s, m), jaxirm.tv_l1_split(s, m)))
        l2, l1 = split(both, mu)
        np.testing.assert_allclose(l2, jaxirm.tv_l2(g, mu), rtol=1e-13)
        np.testing.assert_allclose(l1, jaxirm.tv_l1(g, mu), rtol=1e-13)
        l2u, l1u = split(both, None)
        np.testing.assert_allclose(l2u, jaxirm.tv_l2(g), rtol=1e-13)
        np.testing.assert_allclose(l1u, jaxirm.tv_l1(g), rtol=1e-13)

    @chex.variants(with_jit=True, without_jit=True)
    def test_split_formulas(self):
        rng = np.random.default_rng(7)
        a, b, mu = rng.normal(size=4), rng.normal(size=4), _random_measure(rng, 4)
        a[0], b[0] = 1.0, -1.0  # opposite signs: the ℓ2 estimate goes negative there
        s = jnp.asarray(np.stack([a, b]))
        l2 = self.variant(jaxirm.tv_l2_split)(s, jnp.asarray(mu))
        l1 = self.variant(jaxirm.tv_l1_split)(s, jnp.asarray(mu))
        np.testing.assert_allclose(l2, np.sum(mu * a * b), rtol=1e-12)
        np.testing.assert_allclose(l1, np.sum(mu * np.sqrt(np.abs(a * b))) ** 2, rtol=1e-12)
        # swapping the halves changes nothing
        np.testing.assert_allclose(self.variant(jaxirm.tv_l1_split)(s[::-1], jnp.asarray(mu)), l1, rtol=1e-14)
        # the ℓ2 estimate can be negative (the solvers clip it); the ℓ1 one cannot
        neg = jnp.array([[1.0, 2.0], [-1.0, -3.0]])
        self.assertLess(float(self.variant(jaxirm.tv_l2_split)(neg, None)), 0.0)
        self.assertGreater(float(self.variant(jaxirm.tv_l1_split)(neg, None)), 0.0)

    @chex.variants(with_jit=True, without_jit=True)
    def test_split_gradients_finite_at_zeros(self):
        s = jnp.array([[0.0, 0.0, 0.5, 1.0], [0.0, 2.0, -0.5, 4.0]])  # env 0 both zero, env 1 one zero
        for penalty in (jaxirm.tv_l1_split, jaxirm.tv_l2_split):
            grad = self.variant(jax.grad(penalty))(s)
            self.assertTrue(bool(jnp.all(jnp.isfinite(grad))))
        grad = self.variant(jax.grad(jaxirm.tv_l1_split))(s)
        # √|a b| has an unbounded derivative as a → 0; at an exact zero the subgradient is 0
        np.testing.assert_array_equal(grad[:, 0], [0.0, 0.0])
        np.testing.assert_array_equal(grad[:, 1], [0.0, 0.0])
        # elsewhere it is the derivative of (Σ μ √|a b|)²: 2 S μ √|b| / (2 √|a|) sign(a)
        total = 0.25 * (0.5 + 2.0)
        np.testing.assert_allclose(grad[0, 3], 2 * total * 0.25 * 0.5 * np.sqrt(4.0 / 1.0), rtol=1e-12)
        np.testing.assert_allclose(grad[1, 2], -2 * total * 0.25 * 0.5, rtol=1e-12)
        grad_all_zero = self.variant(jax.grad(jaxirm.tv_l1_split))(jnp.zeros((2, 3)))
        np.testing.assert_array_equal(grad_all_zero, np.zeros((2, 3)))


def test_split_tv_l2_is_unbiased_over_iid_halves():
    """E[Σ_e μ_e g^a_e g^b_e] = Σ_e μ_e g_e² exactly, enumerating every dataset of i.i.d. draws.

    Each environment has three (logit, label) support points with probabilities p; every half holds two i.i.d.
    draws per environment. The expectation over all 3⁸ datasets is computed exactly (weights are products of
    p), so the check is deterministic. The plain penalty of the full batch is biased upwards, which the test
    also shows, so it would catch an estimator that does not use independent halves.
    """
    with jax.enable_x64(True):
        support_f = np.array([[-1.5, 0.5, 2.0], [1.0, -0.5, 3.0]])  # [env, point]
        support_y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
        probs = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
        mu = jnp.array([0.3, 0.7])
        # population gradients g_e = Σ_j p_ej d(f_ej, y_ej), with the closed-form d
        d = np.asarray(scale_derivative(bce_with_logits, jnp.asarray(support_f.ravel()), support_y.ravel()))
        g_pop = (probs * d.reshape(2, 3)).sum(1)
        target = float(np.sum(np.asarray(mu) * g_pop**2))

        # every dataset: 4 draws per env (a, a, b, b), both envs
        idx = np.array(list(itertools.product(range(3), repeat=8)))  # [6561, 8]
        env_of = np.repeat([0, 1], 4)
        logits = support_f[env_of, idx]
        targets = support_y[env_of, idx]
        weight = np.prod(probs[env_of, idx], axis=1)
        halves = jnp.array([0, 0, 1, 1, 0, 0, 1, 1])
        labels = jnp.asarray(env_of)

        @jax.jit
        def estimates(f, y):
            split = jaxirm.split_scale_grads(bce_with_logits, f, y, labels, num_envs=2, halves=halves)
            full = jaxirm.scale_grads(bce_with_logits, f, y, labels, num_envs=2)
            return jaxirm.tv_l2_split(split, mu), jaxirm.tv_l2(full, mu)

        split_est, full_est = jax.vmap(estimates)(jnp.asarray(logits), jnp.asarray(targets))
        np.testing.assert_allclose(weight.sum(), 1.0, rtol=1e-12)
        np.testing.assert_allclose(np.sum(weight * split_est), target, rtol=1e-10)
        bias = np.sum(weight * full_est) - target
        assert bias > 1e-2 * target  # the full-batch plug-in estimate is biased upwards


# ----------------------------------------------------------------------------------------------------------
# Padding environments and the uniform measure.


@pytest.mark.parametrize("penalty", [jaxirm.tv_l1, jaxirm.tv_l2], ids=["tv_l1", "tv_l2"])
@pytest.mark.parametrize("kind", ["labels", "weights"])
def test_padding_envs_do_not_change_penalties_under_env_measure(penalty, kind):
    rng = np.random.default_rng(8)
    f = jnp.asarray(2.0 * rng.normal(size=12), jnp.float32)
    y = jnp.asarray(rng.integers(0, 2, 12), jnp.float32)
    if kind == "labels":
        envs = jnp.asarray(np.arange(12) % 3)
        padded = envs  # same labels, two more (empty) environments
        num, num_padded = 3, 5
    else:
        envs = jnp.asarray(rng.uniform(0.1, 1.0, size=(12, 3)), jnp.float32)
        padded = jnp.concatenate([envs[:, :1], jnp.zeros((12, 1)), envs[:, 1:], jnp.zeros((12, 1))], axis=1)
        num, num_padded = None, None

    @jax.jit
    def value(e, padded_e):
        g = jaxirm.scale_grads(bce_with_logits, f, y, e, num_envs=num)
        gp = jaxirm.scale_grads(bce_with_logits, f, y, padded_e, num_envs=num_padded)
        mu_p = jaxirm.env_measure(padded_e, num_envs=num_padded)
        return penalty(g), penalty(gp, mu_p), penalty(gp)

    plain, padded_value, padded_naive = value(envs, padded)
    # g_e: weighted means of 12 float32 derivatives (≤ 6 roundings each; weights within a factor 10), so
    # ≤ 4·18·eps32·10·max|d| apart; the penalty moves by ≤ 2·max|g| times that, plus 4 roundings of its own
    d_max = float(np.abs(np.asarray(scale_derivative(bce_with_logits, f, y))).max())
    g_max = float(np.abs(np.asarray(jaxirm.scale_grads(bce_with_logits, f, y, envs, num_envs=num))).max())
    tol = 2 * g_max * f32_tol(12 + 6, 10 * d_max) + f32_tol(4, float(plain))
    np.testing.assert_allclose(padded_value, plain, rtol=0, atol=tol)
    # measure=None is uniform over all 5 entries, so the padding then dilutes the penalty
    assert abs(float(padded_naive) - float(plain)) > 1e-3 * float(plain)
