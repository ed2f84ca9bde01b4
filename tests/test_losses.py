"""Losses against numpy formulas, and their dummy-scale derivatives three ways.

The three ways of computing g_e = ∂R_e(w)/∂w at w = 1 that must agree:

1. `jaxirm.scale_grads` (one `jax.grad` over per-example dummy scales plus a segment sum / matrix product);
2. the per-environment weighted means of the closed forms `jaxirm.losses.scale_derivative`;
3. the definition: `jax.grad` of ``env_risks(..., scale=w)[e]`` over a *scalar* w (and central differences).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
from _loss_data import LOSSES, loss_data
from _tolerance import assert_within, f32_tol
from absl.testing import parameterized

import jaxirm
from jaxirm import losses
from jaxirm.losses import bce_with_logits, softmax_cross_entropy, squared_error


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_softmax(x):
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _np_closed_form(loss_fn, f, y):
    """∂ℓ(w f, y)/∂w at w = 1, written from the formulas (independent of jaxirm)."""
    if loss_fn is bce_with_logits:
        return (_np_sigmoid(f) - y) * f
    if loss_fn is squared_error:
        return 2.0 * (f - y) * f
    resid = _np_softmax(f) - np.eye(f.shape[1])[y]
    return (resid * f).sum(axis=1)


def _np_weighted_means(values, weights):
    return (weights * values[:, None]).sum(0) / weights.sum(0)


class LossValueTest(chex.TestCase):
    """Per-example losses against numpy, in the default float32 (what users get)."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_bce_is_stable_for_large_logits(self):
        f = np.array([-1000.0, -80.0, -50.0, -1.0, 0.0, 1.0, 50.0, 80.0, 1000.0])
        for y in (np.zeros_like(f), np.ones_like(f), np.full_like(f, 0.3)):
            got = self.variant(bce_with_logits)(jnp.asarray(f, jnp.float32), jnp.asarray(y, jnp.float32))
            # log(1 + e^f) - y f, with the max trick so that nothing overflows.
            expected = np.maximum(f, 0.0) + np.log1p(np.exp(-np.abs(f))) - y * f
            self.assertTrue(np.all(np.isfinite(got)))
            # y rounded to float32, then ≤ 5 roundings on terms of size |f| + |y f| + log 2 (they cancel)
            assert_within(got, expected, f32_tol(6, np.maximum(f, 0) + np.abs(y * f) + np.log(2.0)))

    @chex.variants(with_jit=True, without_jit=True)
    def test_bce_equals_cross_entropy_of_sigmoid(self):
        rng = np.random.default_rng(0)
        f = rng.normal(size=16) * 3.0
        y = rng.uniform(size=16)  # soft labels
        got = self.variant(bce_with_logits)(jnp.asarray(f, jnp.float32), jnp.asarray(y, jnp.float32))
        p = _np_sigmoid(f)
        # f and y rounded to float32 (ℓ is 1-Lipschitz in f, |f|-Lipschitz in y), ≤ 5 roundings on terms of
        # size ≤ 2|f| + log 2
        tol = f32_tol(7, 2 * np.abs(f) + np.log(2.0))
        assert_within(got, -y * np.log(p) - (1 - y) * np.log(1 - p), tol)

    @chex.variants(with_jit=True, without_jit=True)
    def test_squared_error(self):
        s = np.array([1.5, -2.0, 0.0, 3.0], np.float32)
        y = np.array([0.5, 1.0, -1.0, 3.0], np.float32)
        got = self.variant(squared_error)(s, y)
        np.testing.assert_array_equal(got, np.array([1.0, 9.0, 1.0, 0.0], np.float32))

    @chex.variants(with_jit=True, without_jit=True)
    def test_softmax_cross_entropy_is_logsumexp_minus_picked(self):
        rng = np.random.default_rng(1)
        f = rng.normal(size=(8, 4)) * 3.0
        f[0] = [1000.0, 0.0, -1000.0, 999.0]  # would overflow a naive exp
        f[1] = [-1000.0, -1000.0, -1000.0, -1000.0]
        y = np.array([3, 0, 1, 2, 3, 0, 1, 2])
        got = self.variant(softmax_cross_entropy)(jnp.asarray(f, jnp.float32), jnp.asarray(y))
        m = f.max(axis=1)
        expected = m + np.log(np.exp(f - m[:, None]).sum(axis=1)) - f[np.arange(8), y]
        self.assertTrue(np.all(np.isfinite(got)))
        # m + log Σ exp(f − m) − f_y: logits rounded to float32, 4 exps, a 4-term sum, a log and two sums,
        # on terms of size 2·max|f| + log 4 that cancel (rows 0 and 1: 1000.31 − 999 loses float32 digits)
        tol = f32_tol(1 + 4 + 4 + 3, 2 * np.abs(f).max(axis=1) + np.log(4.0))
        assert_within(got, expected, tol)
        assert_within(got[1], np.log(4.0), tol[1])

    def test_losses_are_per_example(self):
        """ℓ_i depends on example i only: changing example 0 leaves the others alone."""
        for _, loss_fn in LOSSES:
            f, y = loss_data(loss_fn, 6, seed=2)
            f2 = f.copy()
            f2.flat[0] += 5.0  # logit of example 0 (its first class for the multiclass loss)
            a = np.asarray(loss_fn(jnp.asarray(f, jnp.float32), jnp.asarray(y)))
            b = np.asarray(loss_fn(jnp.asarray(f2, jnp.float32), jnp.asarray(y)))
            self.assertEqual(a.shape, (6,))
            self.assertNotAlmostEqual(float(a[0]), float(b[0]), places=3)
            np.testing.assert_array_equal(a[1:], b[1:])


class ScaleDerivativeTest(chex.TestCase):
    """Closed forms against autodiff and finite differences, in float64."""

    def setUp(self):
        super().setUp()
        self.enter_context(jax.enable_x64(True))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*LOSSES)
    def test_closed_form_matches_numpy_formula(self, loss_fn):
        f, y = loss_data(loss_fn, 12, seed=3)
        got = self.variant(lambda a, b: losses.scale_derivative(loss_fn, a, b))(
            jnp.asarray(f), jnp.asarray(y)
        )
        np.testing.assert_allclose(got, _np_closed_form(loss_fn, f, y), rtol=1e-12, atol=1e-12)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*LOSSES)
    def test_closed_form_matches_per_example_autodiff(self, loss_fn):
        f, y = loss_data(loss_fn, 12, seed=4)

        def one(f_i, y_i):  # d/dw ℓ(w f_i, y_i) at w = 1, for a single example
            return jax.grad(lambda w: loss_fn((w * f_i)[None], y_i[None])[0])(1.0)

        auto = self.variant(jax.vmap(one))(jnp.asarray(f), jnp.asarray(y))
        closed = losses.scale_derivative(loss_fn, jnp.asarray(f), jnp.asarray(y))
        np.testing.assert_allclose(closed, auto, rtol=1e-12, atol=1e-12)

    @parameterized.named_parameters(*LOSSES)
    def test_closed_form_matches_central_differences(self, loss_fn):
        f, y = loss_data(loss_fn, 12, seed=5)
        h = 1e-6
        loss = jax.jit(loss_fn)
        fd = (
            loss(jnp.asarray((1 + h) * f), jnp.asarray(y)) - loss(jnp.asarray((1 - h) * f), jnp.asarray(y))
        ) / (2 * h)
        closed = jax.jit(losses.scale_derivative, static_argnums=0)(loss_fn, jnp.asarray(f), jnp.asarray(y))
        np.testing.assert_allclose(closed, fd, rtol=1e-6, atol=1e-8)

    def test_unknown_loss_has_no_closed_form(self):
        with self.assertRaisesRegex(ValueError, "no closed-form"):
            losses.scale_derivative(lambda f, y: (f - y) ** 4, jnp.ones(3), jnp.ones(3))


ENV_KINDS = (("labels", "labels"), ("weights", "weights"))
CASES = tuple((f"{lname}_{ename}", loss_fn, ekind) for lname, loss_fn in LOSSES for ename, ekind in ENV_KINDS)


def _envs(kind, n, num_envs, seed):
    """Labels (every env present, unequal sizes) or soft weights, plus the numpy weight matrix A."""
    rng = np.random.default_rng(seed)
    if kind == "labels":
        labels = np.concatenate([np.arange(num_envs), rng.integers(0, num_envs, n - num_envs)])
        rng.shuffle(labels)
        return jnp.asarray(labels), np.eye(num_envs)[labels]
    weights = rng.uniform(0.05, 1.0, size=(n, num_envs))
    return jnp.asarray(weights), weights


class ScaleGradsThreeWaysTest(chex.TestCase):
    """scale_grads == weighted means of the closed form == d/dw env_risks(scale=w) at w = 1."""

    def setUp(self):
        super().setUp()
        self.enter_context(jax.enable_x64(True))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*CASES)
    def test_scale_grads_three_ways(self, loss_fn, kind):
        num_envs = 3
        f, y = loss_data(loss_fn, 20, seed=6)
        envs, weights = _envs(kind, 20, num_envs, seed=7)
        fj, yj = jnp.asarray(f), jnp.asarray(y)
        got = self.variant(lambda a, b, e: jaxirm.scale_grads(loss_fn, a, b, e, num_envs=num_envs))(
            fj, yj, envs
        )
        chex.assert_shape(got, (num_envs,))

        # 1. the per-environment weighted means of the closed forms (numpy)
        expected = _np_weighted_means(_np_closed_form(loss_fn, f, y), weights)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
        # ... and of jaxirm.losses.scale_derivative
        closed = np.asarray(losses.scale_derivative(loss_fn, fj, yj))
        np.testing.assert_allclose(got, _np_weighted_means(closed, weights), rtol=1e-10, atol=1e-12)

        # 2. the definition: R(w) with one *scalar* scale w, differentiated at w = 1 (reverse mode, one
        #    vjp per environment), and central differences of R
        def risks(w):
            return jaxirm.env_risks(loss_fn, fj, yj, envs, num_envs=num_envs, scale=w)

        by_definition = jax.jit(jax.jacrev(risks))(1.0)
        np.testing.assert_allclose(got, by_definition, rtol=1e-10, atol=1e-12)
        h = 1e-6
        jitted = jax.jit(risks)
        np.testing.assert_allclose(got, (jitted(1 + h) - jitted(1 - h)) / (2 * h), rtol=1e-6, atol=1e-8)

    @parameterized.named_parameters(*LOSSES)
    def test_float32_agrees_with_float64(self, loss_fn):
        f, y = loss_data(loss_fn, 20, seed=10)
        labels = np.arange(20) % 2
        grads = jax.jit(lambda a, b, e: jaxirm.scale_grads(loss_fn, a, b, e, num_envs=2))
        g64 = grads(jnp.asarray(f), jnp.asarray(y), jnp.asarray(labels))
        with jax.enable_x64(False):
            y32 = jnp.asarray(y, jnp.int32 if loss_fn is softmax_cross_entropy else jnp.float32)
            g32 = grads(jnp.asarray(f, jnp.float32), y32, jnp.asarray(labels))
            self.assertEqual(g32.dtype, jnp.float32)
        self.assertEqual(g64.dtype, jnp.float64)
        # inputs rounded to float32 (eps32/2 relative), so each derivative d(f, y), whose sensitivity is
        # ≤ 2(1 + |f|)(|f| + |y|), moves by ≤ eps32·(1 + |f|)(|f| + |y|); then ≤ 8 roundings per derivative
        # and a 10-term mean per environment
        af = np.abs(f).sum(axis=-1) if f.ndim == 2 else np.abs(f)
        ay = 0.0 if loss_fn is softmax_cross_entropy else np.abs(y)
        np.testing.assert_allclose(g32, g64, rtol=0, atol=f32_tol(10 + 8, 2 * np.max((1 + af) * (af + ay))))
