"""Environment risks: weighted means by hand, the scale argument, padding, and JAX transformations."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _loss_data import LOSSES, loss_data
from _tolerance import f32_tol
from absl.testing import parameterized

import jaxirm
from jaxirm.losses import bce_with_logits, squared_error


def _np_losses(loss_fn, f, y):
    """Per-example losses from the formulas, in numpy."""
    if loss_fn is bce_with_logits:
        return np.maximum(f, 0) + np.log1p(np.exp(-np.abs(f))) - y * f
    if loss_fn is squared_error:
        return (f - y) ** 2
    m = f.max(axis=1)
    return m + np.log(np.exp(f - m[:, None]).sum(axis=1)) - f[np.arange(len(y)), y]


def _np_bce_scale_derivative(f, y):
    return (1.0 / (1.0 + np.exp(-f)) - y) * f


class EnvRisksTest(chex.TestCase):
    def setUp(self):
        super().setUp()
        self.enter_context(jax.enable_x64(True))

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*LOSSES)
    def test_label_risks_are_per_env_means(self, loss_fn):
        f, y = loss_data(loss_fn, 15, seed=0)
        labels = np.array([0, 1, 1, 2, 2, 2, 0, 1, 2, 2, 0, 2, 1, 2, 2])
        got = self.variant(lambda a, b, e: jaxirm.env_risks(loss_fn, a, b, e, num_envs=3))(
            jnp.asarray(f), jnp.asarray(y), jnp.asarray(labels)
        )
        ell = _np_losses(loss_fn, f, y)
        expected = [ell[labels == e].mean() for e in range(3)]  # a loop over envs: the independent path
        np.testing.assert_allclose(got, expected, rtol=1e-12)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*LOSSES)
    def test_weighted_risks_are_weighted_means(self, loss_fn):
        f, y = loss_data(loss_fn, 12, seed=1)
        weights = np.random.default_rng(2).uniform(0.0, 2.0, size=(12, 4))
        got = self.variant(lambda a, b, e: jaxirm.env_risks(loss_fn, a, b, e))(
            jnp.asarray(f), jnp.asarray(y), jnp.asarray(weights)
        )
        ell = _np_losses(loss_fn, f, y)
        expected = [np.average(ell, weights=weights[:, e]) for e in range(4)]
        np.testing.assert_allclose(got, expected, rtol=1e-12)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(("labels", "labels"), ("soft_rows", "weights"))
    def test_empirical_average_of_risks_is_plain_mean_loss(self, kind):
        f, y = loss_data(bce_with_logits, 20, seed=3)
        rng = np.random.default_rng(4)
        if kind == "labels":
            envs = jnp.asarray(rng.integers(0, 3, 20))
        else:  # soft rows on the simplex (what a softmax inference network gives)
            logits_env = rng.normal(size=(20, 3))
            envs = jnp.asarray(np.exp(logits_env) / np.exp(logits_env).sum(1, keepdims=True))

        def train_risk(a, b, e):
            mu = jaxirm.env_measure(e, num_envs=3, kind="empirical")
            return jnp.sum(mu * jaxirm.env_risks(bce_with_logits, a, b, e, num_envs=3))

        got = self.variant(train_risk)(jnp.asarray(f), jnp.asarray(y), envs)
        np.testing.assert_allclose(got, _np_losses(bce_with_logits, f, y).mean(), rtol=1e-6)

    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.named_parameters(*LOSSES)
    def test_scalar_and_per_example_scale(self, loss_fn):
        f, y = loss_data(loss_fn, 10, seed=5)
        labels = jnp.asarray(np.arange(10) % 2)
        w = np.random.default_rng(6).uniform(0.5, 2.0, size=10)
        risks = self.variant(lambda a, b, e, s: jaxirm.env_risks(loss_fn, a, b, e, num_envs=2, scale=s))
        scaled_rows = w[:, None] * f if f.ndim == 2 else w * f
        expected_vec = [_np_losses(loss_fn, scaled_rows, y)[np.arange(10) % 2 == e].mean() for e in range(2)]
        expected_scalar = [_np_losses(loss_fn, 1.7 * f, y)[np.arange(10) % 2 == e].mean() for e in range(2)]
        fj, yj = jnp.asarray(f), jnp.asarray(y)
        np.testing.assert_allclose(risks(fj, yj, labels, jnp.asarray(w)), expected_vec, rtol=1e-12)
        np.testing.assert_allclose(risks(fj, yj, labels, 1.7), expected_scalar, rtol=1e-12)
        np.testing.assert_allclose(
            risks(fj, yj, labels, 1.0), jaxirm.env_risks(loss_fn, fj, yj, labels, num_envs=2), rtol=1e-15
        )

    @parameterized.named_parameters(*LOSSES)
    def test_per_example_scale_along_common_direction_is_scale_grads(self, loss_fn):
        """Σ_i ∂R_e/∂w_i (a jvp of the [n] scale along w_i = w) is ∂R_e/∂w for a common scale."""
        f, y = loss_data(loss_fn, 10, seed=7)
        weights = jnp.asarray(np.random.default_rng(8).uniform(0.1, 1.0, size=(10, 3)))
        fj, yj = jnp.asarray(f), jnp.asarray(y)
        ones = jnp.ones(10)

        @jax.jit
        def run(s):
            _, tangent = jax.jvp(lambda w: jaxirm.env_risks(loss_fn, fj, yj, weights, scale=w), (s,), (ones,))
            return tangent, jaxirm.scale_grads(loss_fn, fj, yj, weights)

        tangent, grads = run(ones)
        np.testing.assert_allclose(tangent, grads, rtol=1e-10, atol=1e-14)


# ----------------------------------------------------------------------------------------------------------
# Padding: environments without mass and examples without weight. Everything is jitted (eager grad-of-grad
# compiles every primitive separately, which is slow on CPU).


def _finite(tree):
    return all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree_util.tree_leaves(tree))


@pytest.mark.parametrize("name,loss_fn", LOSSES[::2])  # bce and ce: 1-D and 2-D logits
def test_label_never_occurring_gives_exact_zero_without_nan(name, loss_fn):
    f, y = loss_data(loss_fn, 8, seed=9)
    f, y = jnp.asarray(f, jnp.float32), jnp.asarray(y)
    labels = jnp.array([0, 0, 1, 3, 3, 1, 0, 3])  # envs 2 and 4 are empty

    def outputs(x):
        return jaxirm.scale_grads(loss_fn, x, y, labels, num_envs=5), jaxirm.env_risks(
            loss_fn, x, y, labels, num_envs=5
        )

    def penalties(x):
        g = jaxirm.scale_grads(loss_fn, x, y, labels, num_envs=5)
        return jaxirm.tv_l1(g) + jaxirm.tv_l2(g)

    @jax.jit
    def run(x):
        (g, r), pullback = jax.vjp(outputs, x)
        empty = jnp.zeros(5).at[jnp.array([2, 4])].set(1.0)  # cotangent only on the empty envs
        return g, r, pullback((empty, empty))[0], jax.grad(penalties)(x)

    grads, risks, d_empty, d_penalties = run(f)
    for vec in (risks, grads):
        assert _finite(vec)
        assert vec[2] == 0.0 and vec[4] == 0.0
        assert bool(jnp.all(vec[jnp.array([0, 1, 3])] != 0.0))
    # Gradients w.r.t. the logits: exactly zero for the empty envs, finite and non-trivial for penalties.
    np.testing.assert_array_equal(d_empty, np.zeros_like(f))
    assert _finite(d_penalties) and bool(jnp.any(d_penalties != 0))


@pytest.mark.parametrize("name,loss_fn", LOSSES[::2])
def test_zero_weight_column_gives_exact_zero_without_nan(name, loss_fn):
    f, y = loss_data(loss_fn, 8, seed=10)
    f, y = jnp.asarray(f, jnp.float32), jnp.asarray(y)
    weights = np.random.default_rng(11).uniform(0.1, 1.0, size=(8, 3)).astype(np.float32)
    weights[:, 1] = 0.0
    weights = jnp.asarray(weights)

    def outputs(x, a):
        return jaxirm.scale_grads(loss_fn, x, y, a), jaxirm.env_risks(loss_fn, x, y, a)

    def penalty(x, a, kind):
        g, r = outputs(x, a)
        mu = jaxirm.env_measure(a, kind=kind)
        return jaxirm.tv_l1(g, mu) + jaxirm.tv_l2(g, mu) + jaxirm.vrex(r, mu)

    @jax.jit
    def run(x, a):
        (g, r), pullback = jax.vjp(outputs, x, a)
        column = jnp.zeros(3).at[1].set(1.0)  # cotangent only on the padding column
        uniform = jax.grad(penalty, argnums=(0, 1))(x, a, "uniform")
        empirical = jax.grad(penalty, argnums=(0, 1))(x, a, "empirical")
        return g, r, pullback((column, column)), uniform, empirical

    grads, risks, d_column, (du_f, du_a), (de_f, de_a) = run(f, weights)
    assert _finite((grads, risks, d_column, du_f, du_a, de_f, de_a))
    assert risks[1] == 0.0 and grads[1] == 0.0
    for d in (du_f, du_a[:, 0], de_f, de_a[:, 0]):
        assert bool(jnp.any(d != 0))
    # The padding column's own outputs have zero gradient w.r.t. logits and weights ...
    for d in d_column:
        np.testing.assert_array_equal(d, np.zeros_like(d))
    # ... so under the uniform measure over envs with mass the penalty ignores that column. (Under the
    # empirical measure it does not: mass in column 1 would shrink the other envs' weights m_e / Σ m.)
    np.testing.assert_array_equal(du_a[:, 1], np.zeros(8, np.float32))


def test_all_zero_weights_give_zeros_everywhere():
    f = jnp.array([0.5, -1.0, 2.0])
    y = jnp.array([1.0, 0.0, 1.0])
    weights = jnp.zeros((3, 2))

    def penalty(x, a):
        g = jaxirm.scale_grads(bce_with_logits, x, y, a)
        return jaxirm.tv_l1(g, jaxirm.env_measure(a, kind="empirical")) + jaxirm.tv_l2(g)

    value, grads = jax.jit(jax.value_and_grad(penalty, argnums=(0, 1)))(f, weights)
    assert value == 0.0
    assert _finite(grads)
    np.testing.assert_array_equal(
        jax.jit(jaxirm.env_risks, static_argnums=0)(bce_with_logits, f, y, weights), [0, 0]
    )


@pytest.mark.parametrize("name,loss_fn", LOSSES[::2])  # bce and ce: 1-D and 2-D logits
def test_zero_rows_change_nothing(name, loss_fn):
    f, y = loss_data(loss_fn, 10, seed=12)
    weights = np.random.default_rng(13).uniform(0.1, 1.0, size=(10, 3))
    pad_f, pad_y = loss_data(loss_fn, 6, seed=14)  # arbitrary (finite) padding examples
    f_pad = np.concatenate([f, pad_f])
    y_pad = np.concatenate([y, pad_y])
    w_pad = np.concatenate([weights, np.zeros((6, 3))])
    with jax.enable_x64(True):

        @jax.jit
        def both(x, t, a):
            return jaxirm.env_risks(loss_fn, x, t, a), jaxirm.scale_grads(loss_fn, x, t, a)

        a = both(jnp.asarray(f), jnp.asarray(y), jnp.asarray(weights))
        b = both(jnp.asarray(f_pad), jnp.asarray(y_pad), jnp.asarray(w_pad))
        np.testing.assert_allclose(b, a, rtol=1e-13)
        penalty = lambda x: jaxirm.tv_l2(jaxirm.scale_grads(loss_fn, x, jnp.asarray(y_pad), w_pad))  # noqa: E731
        d = jax.jit(jax.grad(penalty))(jnp.asarray(f_pad))
        np.testing.assert_array_equal(d[10:], np.zeros_like(d[10:]))  # padding rows get no gradient
        assert bool(jnp.all(jnp.any(d[:10] != 0, axis=tuple(range(1, d.ndim)))))


# ----------------------------------------------------------------------------------------------------------
# JAX transformations: jit, vmap, grad, lax.scan.


def _bce_problem(n=16, num_envs=3, seed=15, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    f = jnp.asarray(2.0 * rng.normal(size=n), dtype)
    y = jnp.asarray(rng.integers(0, 2, n), dtype)
    labels = jnp.asarray(np.arange(n) % num_envs)
    weights = jnp.asarray(rng.uniform(0.1, 1.0, size=(n, num_envs)), dtype)
    return f, y, labels, weights


def _closed_grads(f, y, a):
    """g_e by the BCE closed form, written in the test: Σ_i A_ie (σ(f_i) − y_i) f_i / Σ_i A_ie."""
    d = (jax.nn.sigmoid(f) - y) * f
    return (a * d[:, None]).sum(0) / a.sum(0)


def _closed_tv_l1(f, y, a):
    return jnp.mean(jnp.abs(_closed_grads(f, y, a))) ** 2


def _grads_tol(f, y, n):
    """Two float32 weighted means of the same n derivatives d_i = (σ(f_i) − y_i) f_i (≤ 6 roundings each):
    Σ w d and Σ w are each within n·eps32·Σ w|d| (Σ w), so the means within (2n + 7)·eps32·max|d|."""
    return f32_tol(2 * n + 7, np.abs(np.asarray((jax.nn.sigmoid(f) - y) * f)).max())


def _tv_l1_tol(f, y, a, n):
    """tv_l1 = s², s = mean_e |g_e|: moves by ≤ 2·max|g|·(bound on g) plus its own 4 roundings."""
    g = np.asarray(_closed_grads(f, y, a))
    return 2 * np.abs(g).max() * _grads_tol(f, y, n) + f32_tol(4, np.mean(np.abs(g)) ** 2)


def test_scale_grads_and_tv_l1_under_jit():
    f, y, labels, _ = _bce_problem()

    @jax.jit
    def penalty(x, e):
        return jaxirm.tv_l1(jaxirm.scale_grads(bce_with_logits, x, y, e, num_envs=3))

    onehot = jax.nn.one_hot(labels, 3)
    for x in (f, -f, 0.3 * f):  # one compilation, several inputs
        tol = _tv_l1_tol(x, y, onehot, 16)  # float32 bound, see _tv_l1_tol
        np.testing.assert_allclose(penalty(x, labels), _closed_tv_l1(x, y, onehot), rtol=0, atol=tol)


def test_vmap_over_logits_and_over_weights():
    f, y, labels, weights = _bce_problem()
    batch_f = jnp.stack([f, 0.5 * f, -f, f + 1.0])
    batch_w = jnp.stack([weights, weights**2, jnp.flip(weights, 0), 1.0 - 0.5 * weights])

    @jax.jit
    def batched(bf, bw):
        over_f = jax.vmap(lambda x: jaxirm.scale_grads(bce_with_logits, x, y, labels, num_envs=3))(bf)
        over_w = jax.vmap(lambda a: jaxirm.scale_grads(bce_with_logits, f, y, a))(bw)
        over_both = jax.vmap(lambda x, a: jaxirm.tv_l1(jaxirm.scale_grads(bce_with_logits, x, y, a)))(bf, bw)
        return over_f, over_w, over_both

    got_f, got_w, got_both = batched(batch_f, batch_w)
    chex.assert_shape((got_f, got_w), (4, 3))
    onehot = jax.nn.one_hot(labels, 3)
    for k in range(4):  # float32 bounds of 16-term weighted means, see _grads_tol and _tv_l1_tol
        tol_f, tol_w = _grads_tol(batch_f[k], y, 16), _grads_tol(f, y, 16)
        np.testing.assert_allclose(got_f[k], _closed_grads(batch_f[k], y, onehot), rtol=0, atol=tol_f)
        np.testing.assert_allclose(got_w[k], _closed_grads(f, y, batch_w[k]), rtol=0, atol=tol_w)
        tol = _tv_l1_tol(batch_f[k], y, batch_w[k], 16)
        np.testing.assert_allclose(got_both[k], _closed_tv_l1(batch_f[k], y, batch_w[k]), rtol=0, atol=tol)


def test_grad_wrt_logits_matches_closed_form_gradient():
    """Second-order path (grad of the autodiff g) against the gradient of the closed-form g."""
    with jax.enable_x64(True):
        f, y, labels, _ = _bce_problem(dtype=jnp.float64)
        onehot = jax.nn.one_hot(labels, 3, dtype=jnp.float64)

        def lib(x):
            g = jaxirm.scale_grads(bce_with_logits, x, y, labels, num_envs=3)
            return jaxirm.tv_l1(g) + 0.3 * jaxirm.tv_l2(g)

        def ref(x):  # no g_e is 0 here, so jnp.abs is fine
            g = _closed_grads(x, y, onehot)
            return jnp.mean(jnp.abs(g)) ** 2 + 0.3 * jnp.mean(g**2)

        got = jax.jit(jax.grad(lib))(f)
        np.testing.assert_allclose(got, jax.jit(jax.grad(ref))(f), rtol=1e-10, atol=1e-14)
        h = 1e-6
        e0 = jnp.zeros_like(f).at[0].set(1.0)
        central = (jax.jit(lib)(f + h * e0) - jax.jit(lib)(f - h * e0)) / (2 * h)
        np.testing.assert_allclose(got[0], central, rtol=1e-5)


def test_grad_wrt_soft_weights_matches_closed_form_gradient():
    with jax.enable_x64(True):
        f, y, _, weights = _bce_problem(dtype=jnp.float64)

        def lib(a):
            g = jaxirm.scale_grads(bce_with_logits, f, y, a)
            return jaxirm.tv_l2(g, jaxirm.env_measure(a, kind="empirical"))

        def ref(a):
            m = a.sum(0)
            return jnp.sum(m / m.sum() * _closed_grads(f, y, a) ** 2)

        got = jax.jit(jax.grad(lib))(weights)
        np.testing.assert_allclose(got, jax.jit(jax.grad(ref))(weights), rtol=1e-10, atol=1e-14)


def test_gradient_descent_in_lax_scan_reduces_penalty():
    f0, y, labels, _ = _bce_problem()

    def penalty(x):
        return jaxirm.tv_l1(jaxirm.scale_grads(bce_with_logits, x, y, labels, num_envs=3))

    def step(x, _):
        value, grad = jax.value_and_grad(penalty)(x)
        return x - 0.5 * grad, value

    @jax.jit
    def run(x):
        x_final, values = jax.lax.scan(step, x, length=30)
        return x_final, values, penalty(x_final), jax.lax.scan(step, x, length=3)[0]

    _, values, final, f3 = run(f0)
    assert values.shape == (30,)
    assert _finite(values)
    assert float(final) < 0.5 * float(values[0])
    assert bool(jnp.all(jnp.diff(values[:5]) < 0))
    # The scanned loop matches the same steps taken one at a time from Python.
    x = f0
    jstep = jax.jit(step)
    for _ in range(3):
        x, _ = jstep(x, None)
    # each step sums ≤ 16 float32 terms after ≤ 12 elementwise roundings, on terms of size ≤ |x| + 1 (the
    # gradient is below 0.06); the step map is 1.03-Lipschitz here (Hessian norm 0.055), so 3 steps stay
    # within 3·(16 + 12) roundings of 1.1·(max|x| + 1)
    np.testing.assert_allclose(f3, x, rtol=0, atol=f32_tol(3 * (16 + 12), 1.1 * (np.abs(f0).max() + 1)))


LOW_PRECISION = [jnp.bfloat16, jnp.float16]


@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=["bfloat16", "float16"])
@pytest.mark.parametrize("envs_kind", ["labels2", "labels3", "weights3"])
def test_low_precision_logits_are_summed_in_float32(dtype, envs_kind):
    """bfloat16 counts exactly only up to 256: summing 1000 examples per environment in the logits' dtype
    made env_risks ~3x, scale_grads ~6x and tv_l1 ~47x too large (float16: 2 % off). Sums now accumulate in
    float32, so the only error left is that of the per-example values, and the result keeps the dtype."""
    from jaxirm.risks import _scale_derivatives

    rng = np.random.default_rng(0)
    n = 3000
    num = 2 if envs_kind == "labels2" else 3
    labels = rng.integers(0, num, n).astype(np.int32)
    envs = np.eye(num, dtype=np.float32)[labels] if envs_kind == "weights3" else labels
    f_lp = jnp.asarray(2.0 * rng.normal(size=n), dtype)
    y_lp = jnp.asarray(rng.integers(0, 2, n), dtype)
    f, y = np.asarray(f_lp, np.float32), np.asarray(y_lp, np.float32)  # the same (rounded) inputs in f32
    eps = float(jnp.finfo(dtype).eps)
    member = [labels == e for e in range(num)]

    risks = jaxirm.env_risks(bce_with_logits, f_lp, y_lp, envs, num)
    assert risks.dtype == dtype
    ref = np.asarray(jaxirm.env_risks(bce_with_logits, f, y, envs, num), np.float64)
    size = np.abs(np.asarray(bce_with_logits(f, y), np.float64))
    # Bound: each per-example loss is off by ≤ 4 eps relative (a few rounded ops), so their mean by
    # ≤ 4 eps · mean|ℓ|; plus the final rounding to the dtype, ≤ eps · |R|.
    bound = 4 * eps * np.array([size[m].mean() for m in member]) + eps * np.abs(ref)
    assert np.all(np.abs(np.asarray(risks, np.float64) - ref) <= bound)

    grads = jaxirm.scale_grads(bce_with_logits, f_lp, y_lp, envs, num)
    assert grads.dtype == dtype
    g_ref = np.asarray(jaxirm.scale_grads(bce_with_logits, f, y, envs, num), np.float64)
    d = np.abs(np.asarray(_scale_derivatives(bce_with_logits, jnp.asarray(f), jnp.asarray(y)), np.float64))
    g_bound = 4 * eps * np.array([d[m].mean() for m in member]) + eps * np.abs(g_ref)  # as for the risks
    assert np.all(np.abs(np.asarray(grads, np.float64) - g_ref) <= g_bound)

    # tv_l1 = (mean_e |g_e|)^2: with s = mean|g| and δ = mean(g_bound), |Δ| ≤ 2sδ + δ² plus rounding eps·tv.
    tv, tv_ref = float(jaxirm.tv_l1(grads)), float(jaxirm.tv_l1(g_ref))
    s, delta = np.mean(np.abs(g_ref)), np.mean(g_bound)
    assert abs(tv - tv_ref) <= 2 * s * delta + delta**2 + 2 * eps * tv_ref


def test_env_mass_follows_the_default_float_dtype_under_x64():
    """With x64 on, integer labels give float64 masses and measures (they stayed float32: μ off by 3.4e-8)."""
    labels = np.array([0, 1, 1, 2, 2, 2, 2])
    with jax.enable_x64(True):
        mass = jaxirm.env_mass(labels, 3)
        mu = jaxirm.env_measure(labels, 3, kind="empirical")
        weights_mu = jaxirm.env_measure(np.eye(3, dtype=np.int32)[labels], kind="empirical")
        assert mass.dtype == jnp.float64 and mu.dtype == jnp.float64 and weights_mu.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(mu), np.array([1.0, 2.0, 4.0]) / 7.0)  # exact in float64
    assert jaxirm.env_mass(labels, 3).dtype == jnp.float32
