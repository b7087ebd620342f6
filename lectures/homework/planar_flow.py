"""Homework: the planar flow, trained by reverse KL (Lecture 5, "Residual Flows").

The slide writes the planar flow in the generative direction, z ↦ x:

    x = g(z, θ) = z + u σ(wᵀz + b),       θ = {u, w, b},  σ = tanh,  b a scalar,

and by the matrix determinant lemma, det(I + σ′ u wᵀ) = 1 + σ′ wᵀu, so

    log |det ∂g/∂z| = log |1 + σ′(wᵀz + b) wᵀu|.

g is invertible if σ′ wᵀu ≥ −1 everywhere; as σ′ = 1 − tanh² ∈ (0, 1], wᵀu ≥ −1
suffices.  Rezende & Mohamed (2015, appendix A) make this hold for *every* u by
using, in place of u, the vector

    û = u + (m(wᵀu) − wᵀu) w / ‖w‖²,     m(s) = −1 + log(1 + eˢ),

so that wᵀû = m(wᵀu) > −1.  (‖w‖², not ‖w‖: only then is wᵀû = m(wᵀu).)

Directions, as everywhere in this course: ``forward`` is f: x → z (data to
latent), ``inverse`` is g = f⁻¹: z → x (the slide's formula above).  The
closed form of a planar flow is g, so it lives in ``inverse``; ``forward``
(given) solves g(z) = x numerically.  ``backward`` is the vector-Jacobian
product of the most recent ``inverse``.

Exercises (numpy only; importing ``nflows_np`` is refused by the grader)

1. ``PlanarFlow.u_hat()`` -- the reparametrised û.
2. ``PlanarFlow.inverse(z)`` -- the generative pass x = g(z) and log|det ∂g/∂z|.
3. ``PlanarFlow.backward(grad_x, grad_log_det)`` -- ∂L/∂z, and ∂L/∂u, ∂L/∂w,
   ∂L/∂b added into ``grads`` (through û: it depends on u and w).
4. ``reverse_kl_step(layers, z, beta)`` -- the reverse-KL loss of a stack of
   planar layers against the target U₁, and its gradient.
5. ``train_planar(seed)`` -- K = 8 planar layers fitted to U₁ by reverse KL.
   The grader evaluates the trained layers with its own implementation:
   KL(p‖π) on fresh samples must be small.

Grade your work with::

    python -m nflows_np grade planar_flow.py --assignment planar_flow

and check your gradients yourself (the class follows the library's Flow
contract)::

    import nflows_np as nf, planar_flow
    print(nf.gradcheck.check_flow(planar_flow.PlanarFlow(2, rng=0), x, directions=("inverse",)))

The student version ``lectures/homework/planar_flow.py`` is generated from the
solution with ``python -m nflows_np assign``: edit the solution, not it.
"""
import numpy as np

NUM_LAYERS = 8  # K, the number of planar layers train_planar returns


# ---- given: the flow contract, in miniature -----------------------------------------

class Flow:
    """Base class of a flow layer (the library's contract, DESIGN §2).

    ``params[key]`` holds a trainable array and ``grads[key]`` its gradient,
    same shape.  ``backward`` *adds* into ``grads`` in place (``+=``), and the
    optimiser updates ``params`` in place: never rebind these arrays.
    """

    def __init__(self, dim):
        self.dim = int(dim)
        self.params = {}
        self.grads = {}

    def add_param(self, key, value):
        self.params[key] = np.array(value, dtype=np.float64)
        self.grads[key] = np.zeros_like(self.params[key])

    def check_input(self, x, what="input"):
        """``x`` as a float64 (N, dim) array; a ValueError naming the layer otherwise."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{type(self).__name__}: {what} must have shape (N, {self.dim}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{type(self).__name__}: {what} contains NaN or inf")
        return x

    def zero_grad(self):
        for grad in self.grads.values():
            grad.fill(0.0)


def softplus(s):
    """log(1 + eˢ), without overflow for large s."""
    return np.logaddexp(0.0, s)


def sigmoid(s):
    """σ(s) = 1 / (1 + e⁻ˢ) = softplus′(s)."""
    return 0.5 * (1.0 + np.tanh(0.5 * s))


# ---- exercises 1-3: the planar layer ------------------------------------------------

class PlanarFlow(Flow):
    """Planar flow  x = g(z) = z + û tanh(wᵀz + b)  (the slide, with u replaced by û).

    Parameters (set by the grader through ``params``): ``"u"`` (D,), ``"w"``
    (D,), ``"b"`` () -- a scalar bias, stored as a 0-d array.
    """

    def __init__(self, dim, rng=None):
        super().__init__(dim)
        rng = np.random.default_rng(rng)
        bound = 1.0 / np.sqrt(self.dim)
        self.add_param("u", rng.uniform(-bound, bound, self.dim))
        self.add_param("w", rng.uniform(-bound, bound, self.dim))
        self.add_param("b", 0.0)
        self._cache = None  # what backward needs from the last inverse

    def u_hat(self):
        """û = u + (m(wᵀu) − wᵀu) w / ‖w‖²,  m(s) = −1 + softplus(s);  shape (D,).

        Then wᵀû = m(wᵀu) > −1, and g is invertible.  (You may assume w ≠ 0.)
        """
        raise NotImplementedError("exercise: replace this line with your solution")

    def inverse(self, z):
        """The generative pass  x = g(z) = z + û tanh(wᵀz + b)  and  log|det ∂g/∂z|.

        Parameters
        ----------
        z : ndarray, shape (N, D)

        Returns
        -------
        x : ndarray, shape (N, D)
        log_det : ndarray, shape (N,)
            ``log|1 + h′(wᵀz_n + b) wᵀû|`` with h′ = 1 − tanh².

        Store in ``self._cache`` what ``backward`` will need.
        """
        z = self.check_input(z, "z")
        raise NotImplementedError("exercise: replace this line with your solution")

    def forward(self, x):
        """Given: z = f(x) = g⁻¹(x) by a safeguarded Newton method, and log|det ∂f/∂x|.

        With a = wᵀz + b and c = wᵀû > −1, applying wᵀ· + b to x = z + û tanh(a)
        gives the scalar equation  a + c tanh(a) = wᵀx + b,  increasing in a, whose
        root lies within |c| of wᵀx + b; then z = x − û tanh(a) and
        log|det ∂f/∂x| = −log(1 + h′(a) c).  (Its backward is not part of this homework.)
        """
        x = self.check_input(x, "x")
        w, b, u_hat = self.params["w"], self.params["b"], self.u_hat()
        c = float(w @ u_hat)
        y = x @ w + b
        lo, hi = y - abs(c), y + abs(c)
        a = y.copy()
        for _ in range(200):
            t = np.tanh(a)
            value = a + c * t - y
            lo = np.where(value < 0, a, lo)
            hi = np.where(value > 0, a, hi)
            newton = a - value / (1.0 + c * (1.0 - t * t))
            new = np.where((newton > lo) & (newton < hi), newton, 0.5 * (lo + hi))
            done = np.all(np.abs(new - a) <= 1e-15 * (1.0 + np.abs(a)))
            a = new
            if done:
                break
        t = np.tanh(a)
        self._cache = None  # backward differentiates inverse only
        return x - t[:, None] * u_hat, -np.log(1.0 + (1.0 - t * t) * c)

    def backward(self, grad_x, grad_log_det):
        """Vector-Jacobian product of the last ``inverse``.

        Given ∂L/∂x (N, D) and ∂L/∂log_det (N,), return ∂L/∂z (N, D) and ADD
        ∂L/∂u, ∂L/∂w, ∂L/∂b (summed over the batch) into ``self.grads``.
        Both x and log_det depend on u and w through û (exercise 1): chain
        through it.
        """
        if self._cache is None:
            raise RuntimeError("PlanarFlow.backward differentiates the last inverse(z): call inverse first")
        raise NotImplementedError("exercise: replace this line with your solution")


# ---- given: the target U₁, the base density, an optimiser -----------------------------

def u1_log_prob(x):
    """log π̃(x) = −U₁(x), unnormalised (Rezende & Mohamed 2015, Table 1); shape (N,).

    U₁(x) = ½ ((‖x‖ − 2)/0.4)² − log(exp(−½((x₁ − 2)/0.6)²) + exp(−½((x₁ + 2)/0.6)²)).
    Its normaliser is log Z = 1.8775 (the grader knows it).
    """
    r = np.sqrt(np.sum(x * x, axis=1))
    ring = 0.5 * ((r - 2.0) / 0.4) ** 2
    return -ring + np.logaddexp(-0.5 * ((x[:, 0] - 2.0) / 0.6) ** 2, -0.5 * ((x[:, 0] + 2.0) / 0.6) ** 2)


def u1_grad_log_prob(x):
    """∇ log π̃(x) = −∇U₁(x), shape (N, 2) (0 at x = 0, where ‖x‖ has no gradient)."""
    r = np.sqrt(np.sum(x * x, axis=1))
    unit = np.where((r > 0)[:, None], x / np.where(r > 0, r, 1.0)[:, None], 0.0)
    grad = -((r - 2.0) / 0.4**2)[:, None] * unit
    a_plus, a_minus = -0.5 * ((x[:, 0] - 2.0) / 0.6) ** 2, -0.5 * ((x[:, 0] + 2.0) / 0.6) ** 2
    weight_plus = np.exp(a_plus - np.logaddexp(a_plus, a_minus))  # softmax of the two bumps
    grad[:, 0] += -weight_plus * (x[:, 0] - 2.0) / 0.36 - (1.0 - weight_plus) * (x[:, 0] + 2.0) / 0.36
    return grad


def standard_normal_log_prob(z):
    """log N(z; 0, I), shape (N,)."""
    return -0.5 * np.sum(z * z, axis=1) - 0.5 * z.shape[1] * np.log(2.0 * np.pi)


class Adam:
    """Adam (Kingma & Ba 2015) over the params of a list of layers, updated in place."""

    def __init__(self, layers, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.pairs = [(layer.params[key], layer.grads[key]) for layer in layers for key in layer.params]
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.moments = [(np.zeros_like(p), np.zeros_like(p)) for p, _ in self.pairs]

    def step(self):
        self.t += 1
        beta1, beta2 = self.betas
        for (param, grad), (m, v) in zip(self.pairs, self.moments):
            m *= beta1
            m += (1.0 - beta1) * grad
            v *= beta2
            v += (1.0 - beta2) * grad * grad
            m_hat, v_hat = m / (1.0 - beta1**self.t), v / (1.0 - beta2**self.t)
            param -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


# ---- exercises 4-5: reverse KL ------------------------------------------------------------

def reverse_kl_step(layers, z, beta=1.0):
    """Reverse-KL loss of the stack ``layers`` against U₁, and its gradient.

    The layers are g_1, …, g_K; sampling applies g_K first (the slide:
    x = g_1 ∘ ⋯ ∘ g_K(z)), i.e. ``layers[-1].inverse`` first and
    ``layers[0].inverse`` last.  With log|det ∂g/∂z| = Σ_k (layer log-dets),

        loss = (1/N) Σ_n [ log p(z_n) − log|det ∂g/∂z|(z_n) − β log π̃(x_n) ],

    a Monte Carlo estimate of KL(p(x|θ)‖π) − log Z at β = 1.  Add ∂loss/∂θ into
    every layer's ``grads`` (through the layers' ``backward``, last pass first)
    and return the loss as a float.  The caller zeroes the gradients.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def train_planar(seed, num_layers=NUM_LAYERS):
    """Fit ``num_layers`` planar layers (dim 2) to U₁ by reverse KL; return them as a list.

    Use only ``np.random.default_rng(seed)`` for randomness (initial
    parameters, base samples).  The grader calls ``train_planar(seed)`` with a
    seed of its own, then computes KL(p(x|θ)‖π) of the returned layers with
    the library on fresh samples: full marks for KL ≤ 0.5 nats, half for
    ≤ 0.8 (one of U₁'s two modes only: ≈ log 2 ≈ 0.69).  The grader gives the
    whole run 20 s; a few hundred Adam steps are enough.

    Hint: reverse KL seeks modes.  Annealing -- β rising from 0.01 to 1 over
    the first half of training -- lets the flow spread over both modes first;
    even so, about one run in twenty settles on one mode: train a few times
    (from different initial parameters) and keep the run with the lowest loss.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


if __name__ == "__main__":
    # Self-checks: `python planar_flow.py` once the exercises are written.
    rng = np.random.default_rng(0)
    layer = PlanarFlow(2, rng=1)
    layer.params["u"][...] = [1.5, -2.0]
    layer.params["w"][...] = [-0.7, 0.4]
    layer.params["b"][...] = 0.3
    assert layer.params["w"] @ layer.u_hat() > -1.0, "wᵀû must exceed −1"
    z = rng.normal(size=(5, 2))
    x, log_det = layer.inverse(z)
    z_back, log_det_back = layer.forward(x)
    assert np.allclose(z_back, z) and np.allclose(log_det + log_det_back, 0.0), "forward(inverse(z)) ≠ z"

    # log|det ∂g/∂z| against the determinant of a central-difference Jacobian.
    h = 1e-6
    columns = [(layer.inverse(z + h * e)[0] - layer.inverse(z - h * e)[0]) / (2 * h) for e in np.eye(2)]
    jacobian = np.stack(columns, axis=2)
    assert np.allclose(np.linalg.slogdet(jacobian)[1], layer.inverse(z)[1], atol=1e-6)

    # backward against central differences of L = Σ gx ⊙ x + Σ gl ⊙ log_det.
    gx, gl = rng.normal(size=(5, 2)), rng.normal(size=5)

    def loss():
        out, log_det = layer.inverse(z)
        return np.sum(gx * out) + np.sum(gl * log_det)

    layer.zero_grad()
    layer.inverse(z)
    grad_z = layer.backward(gx, gl)
    numeric_z = np.zeros_like(z)
    for index in np.ndindex(*z.shape):
        old = z[index]
        z[index] = old + h
        plus = loss()
        z[index] = old - h
        minus = loss()
        z[index] = old
        numeric_z[index] = (plus - minus) / (2 * h)
    assert np.allclose(grad_z, numeric_z, atol=1e-6), "∂L/∂z is wrong"
    for key, value in layer.params.items():
        numeric = np.zeros(value.shape)
        for index in np.ndindex(*value.shape):
            old = value[index]
            value[index] = old + h
            plus = loss()
            value[index] = old - h
            minus = loss()
            value[index] = old
            numeric[index] = (plus - minus) / (2 * h)
        assert np.allclose(layer.grads[key], numeric, atol=1e-6), f"∂L/∂{key} is wrong"

    print("all self-checks passed")
