"""Homework: the RealNVP affine coupling layer, trained on moons (Lecture 5, "Linear flows" / RealNVP).

The slide splits x into two parts and transforms one conditioned on the other:

    z_{1:d} = x_{1:d},    z_{d:m} = τ(x_{d:m}, c(x_{1:d}))
    ⇔  x_{1:d} = z_{1:d},  x_{d:m} = τ⁻¹(z_{d:m}, c(z_{1:d})).

Here the split is written by a binary ``mask``: ``mask[i] = 1`` puts x_i in
the conditioning part A (passed through unchanged), ``mask[i] = 0`` in the
transformed part B.  RealNVP's τ is affine, with a log-scale s and a shift t
computed from x_A by one network c (an MLP):

    z_A = x_A,   z_B = x_B ⊙ exp(s(x_A)) + t(x_A),
    x_A = z_A,   x_B = (z_B − t(z_A)) ⊙ exp(−s(z_A)).

The Jacobian ∂z/∂x is block-triangular with identity and diag(exp s) on the
diagonal, so whatever the network,

    log|det ∂z/∂x| = Σ_{i∈B} s_i(x_A),     log|det ∂x/∂z| = −Σ_{i∈B} s_i(z_A).

The network outputs 2|B| numbers per sample: the first |B| are a raw
log-scale ŝ, the last |B| the shift t.  The log-scale is softly clamped,
s = 3 tanh(ŝ/3) (``bounded_log_scale``, given), so that exp(±s) never
overflows.

Directions, as everywhere in this course: ``forward`` is f: x → z (data to
latent, the MLE direction), ``inverse`` is g = f⁻¹: z → x (sampling).
``backward`` is the vector-Jacobian product of the most recent pass.

Exercises (numpy only; importing ``nflows_np`` is refused by the grader)

1. ``MLP.forward(h)`` and ``MLP.backward(grad_out)`` -- the conditioner network.
2. ``AffineCoupling.scale_shift(x_A)``, ``forward(x)`` and ``inverse(z)`` -- values and log-dets.
3. ``AffineCoupling.backward(grad_out, grad_log_det)`` -- for both directions.
4. ``nll_step(layers, x)`` -- the negative log-likelihood of a stack of layers and its gradient.
5. ``train_realnvp(x_train, seed)`` -- 6 coupling layers fitted to moons by maximum
   likelihood.  The grader evaluates the trained layers with its own
   implementation: the NLL of held-out moons must be small.

Grade your work with::

    python -m nflows_np grade realnvp_coupling.py --assignment realnvp_coupling

and check your gradients yourself (the class follows the library's Flow contract)::

    import nflows_np as nf, realnvp_coupling as hw
    layer = hw.AffineCoupling([1, 0, 1], rng=0)
    nf.gradcheck.randomize_params(layer, rng=1)   # the last layer starts at 0
    print(nf.gradcheck.check_flow(layer, x))

The student version ``lectures/homework/realnvp_coupling.py`` is generated
from the solution with ``python -m nflows_np assign``: edit the solution, not it.
"""
import numpy as np

NUM_LAYERS = 6      # couplings in the model train_realnvp returns
HIDDEN = (32, 32)   # hidden widths of each coupling's MLP
LOG_SCALE_BOUND = 3.0


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


def bounded_log_scale(raw):
    """s = 3 tanh(ŝ / 3): |s| < 3, and s ≈ ŝ for small ŝ.  Its derivative: ds/dŝ = 1 − (s/3)²."""
    return LOG_SCALE_BOUND * np.tanh(raw / LOG_SCALE_BOUND)


# ---- exercise 1: the conditioner network ----------------------------------------------

class MLP:
    """A tanh multilayer perceptron with hand-written backward (rows are samples)::

        a_0 = h,   a_k = tanh(a_{k−1} W_k + b_k)  (k = 1 … L−1),   out = a_{L−1} W_L + b_L.

    ``params``: "W1", "b1", …, "WL", "bL" with W_k of shape (fan_in, fan_out) and
    b_k of shape (fan_out,); ``grads`` the same keys.  With ``zero_last`` the last
    layer starts at 0, so a coupling layer built on it starts as the identity.
    """

    def __init__(self, sizes, rng=None, zero_last=True):
        rng = np.random.default_rng(rng)
        self.sizes = [int(size) for size in sizes]
        self.params, self.grads = {}, {}
        num = len(self.sizes) - 1
        for k in range(1, num + 1):
            fan_in, fan_out = self.sizes[k - 1], self.sizes[k]
            weight = rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), (fan_in, fan_out))  # Glorot
            if k == num and zero_last:
                weight[...] = 0.0
            self.params[f"W{k}"] = weight
            self.params[f"b{k}"] = np.zeros(fan_out)
        for key, value in self.params.items():
            self.grads[key] = np.zeros_like(value)
        self._cache = None

    def zero_grad(self):
        for grad in self.grads.values():
            grad.fill(0.0)

    def forward(self, h):
        """out = MLP(h), shape (N, sizes[-1]); keep in ``self._cache`` what backward needs."""
        raise NotImplementedError("exercise: replace this line with your solution")

    def backward(self, grad_out):
        """From ∂L/∂out (N, sizes[-1]) of the last forward: return ∂L/∂h (N, sizes[0]),
        and ADD ∂L/∂W_k, ∂L/∂b_k (summed over the batch) into ``self.grads``."""
        raise NotImplementedError("exercise: replace this line with your solution")


# ---- exercises 2-3: the affine coupling layer ------------------------------------------

class AffineCoupling(Flow):
    """RealNVP affine coupling  z_A = x_A,  z_B = x_B ⊙ exp(s(x_A)) + t(x_A).

    ``mask[i] = 1``: x_i in the conditioning part A; ``0``: in the transformed part B.
    The MLP ``net`` maps x_A (N, |A|) to (ŝ, t) (N, 2|B|): columns ``:|B|`` are ŝ,
    columns ``|B|:`` are t, and s = bounded_log_scale(ŝ).

    ``params`` are the network's arrays under the keys "net.W1", "net.b1", …
    (the same array objects as ``net.params["W1"]``, …, and likewise for
    ``grads``): the grader sets them there.
    """

    def __init__(self, mask, hidden=HIDDEN, rng=None):
        mask = np.asarray(mask).astype(int)
        super().__init__(mask.size)
        self.mask = mask
        self.index_a = np.flatnonzero(mask == 1)
        self.index_b = np.flatnonzero(mask == 0)
        self.net = MLP((self.index_a.size, *hidden, 2 * self.index_b.size), rng)
        for key in self.net.params:
            self.params[f"net.{key}"] = self.net.params[key]
            self.grads[f"net.{key}"] = self.net.grads[key]
        self._cache = None  # what backward needs from the last pass, and its direction

    def scale_shift(self, part_a):
        """(s, t) = c(x_A) from the network: the clamped log-scale s and the shift t, each (N, |B|)."""
        raise NotImplementedError("exercise: replace this line with your solution")

    def forward(self, x):
        """z = f(x) and log|det ∂z/∂x| = Σ_B s(x_A); shapes (N, D), (N,)."""
        x = self.check_input(x, "x")
        raise NotImplementedError("exercise: replace this line with your solution")

    def inverse(self, z):
        """x = g(z) = f⁻¹(z) and log|det ∂x/∂z| = −Σ_B s(z_A); shapes (N, D), (N,)."""
        z = self.check_input(z, "z")
        raise NotImplementedError("exercise: replace this line with your solution")

    def backward(self, grad_out, grad_log_det):
        """Vector-Jacobian product of the last pass (forward or inverse).

        Given ∂L/∂out (N, D) and ∂L/∂log_det (N,), return ∂L/∂in (N, D) and ADD
        the gradients of the network's parameters into ``grads`` (through
        ``self.net.backward``).  Remember that the input's part A reaches the
        output twice: directly (out_A = in_A) and through the network.
        """
        if self._cache is None:
            raise RuntimeError("AffineCoupling.backward: call forward or inverse first")
        raise NotImplementedError("exercise: replace this line with your solution")



# ---- given: the base density, an optimiser, moons for self-checks -------------------------

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


def sample_moons(n, rng=None):
    """n points of the "moons" dataset (two interleaved half circles, noise 0.2), shape (n, 2)."""
    rng = np.random.default_rng(rng)
    k = rng.integers(0, 2, size=n)
    theta = rng.uniform(0.0, np.pi, size=n)
    upper = np.stack([2.0 * np.cos(theta) - 1.0, 2.0 * np.sin(theta) - 0.2], axis=1)
    lower = np.stack([1.0 - 2.0 * np.cos(theta), 0.8 - 2.0 * np.sin(theta)], axis=1)
    return np.where((k == 0)[:, None], upper, lower) + 0.2 * rng.standard_normal((n, 2))


# ---- exercises 4-5: maximum likelihood ---------------------------------------------------

def nll_step(layers, x):
    """Negative log-likelihood of the stack ``layers`` at x, and its gradient.

    The model is z = f_K ∘ ⋯ ∘ f_1(x): ``layers[0].forward`` acts first on x.
    With log|det ∂f/∂x| = Σ_k (layer log-dets) and p_Z = N(0, I),

        loss = −(1/N) Σ_n [ log p_Z(z_n) + log|det ∂f/∂x|(x_n) ].

    Add ∂loss/∂θ into every layer's ``grads`` (through the layers' ``backward``,
    last layer first) and return the loss as a float.  The caller zeroes the gradients.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def train_realnvp(x_train, seed):
    """Fit NUM_LAYERS affine couplings (hidden widths HIDDEN) to ``x_train`` (N, 2) by MLE.

    Layer k must have the mask [1, 0] for even k and [0, 1] for odd k, so that
    both coordinates get transformed.  Use only ``np.random.default_rng(seed)``
    for randomness.  Return the list of layers (``layers[0]`` acts first on x).

    The grader calls ``train_realnvp(x_train, seed)`` with 4000 moons points and
    a seed of its own, then computes the NLL of 20 000 held-out moons points
    under the returned layers with the library: full marks for a test NLL at
    most 0.5 nats above the entropy of moons (2.394 nats), half marks for
    0.75 (a Gaussian fit is 0.90 above).  The grader gives the whole run 20 s.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


if __name__ == "__main__":
    # Self-checks: `python realnvp_coupling.py` once the exercises are written.
    rng = np.random.default_rng(0)
    layer = AffineCoupling([1, 0, 1], hidden=(8, 8), rng=1)
    for key in layer.params:  # non-zero parameters everywhere (the last layer starts at 0)
        layer.params[key][...] = 0.5 * rng.standard_normal(layer.params[key].shape)
    x = rng.normal(size=(6, 3))
    z, log_det = layer.forward(x)
    x_back, log_det_back = layer.inverse(z)
    assert np.allclose(x_back, x) and np.allclose(log_det + log_det_back, 0.0), "inverse(forward(x)) ≠ x"
    assert np.allclose(z[:, layer.index_a], x[:, layer.index_a]), "z_A must equal x_A"

    # log|det ∂z/∂x| against the determinant of a central-difference Jacobian.
    h = 1e-6
    columns = [(layer.forward(x + h * e)[0] - layer.forward(x - h * e)[0]) / (2 * h) for e in np.eye(3)]
    assert np.allclose(np.linalg.slogdet(np.stack(columns, axis=2))[1], log_det, atol=1e-6)

    # backward of both passes against central differences of L = Σ g ⊙ out + Σ gl ⊙ log_det.
    g, gl = rng.normal(size=(6, 3)), rng.normal(size=6)
    for direction, point in (("forward", x), ("inverse", z)):
        def loss(direction=direction, point=point):
            out, log_det = getattr(layer, direction)(point)
            return np.sum(g * out) + np.sum(gl * log_det)

        layer.zero_grad()
        getattr(layer, direction)(point)
        grad_in = layer.backward(g, gl)
        for name, array, analytic in [("input", point, grad_in)] + [
                (key, layer.params[key], layer.grads[key].copy()) for key in layer.params]:
            numeric = np.zeros(array.shape)
            for index in np.ndindex(*array.shape):
                old = array[index]
                array[index] = old + h
                plus = loss()
                array[index] = old - h
                minus = loss()
                array[index] = old
                numeric[index] = (plus - minus) / (2 * h)
            assert np.allclose(analytic, numeric, atol=1e-6), f"{direction}: ∂L/∂{name} is wrong"

    print("all self-checks passed")
