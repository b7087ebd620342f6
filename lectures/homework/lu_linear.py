"""Homework: the LU-parametrised linear flow (Lecture 5, "Linear flows"; Glow).

A linear flow  z = f(x) = W x  has Jacobian W, so  log|det ∂f/∂x| = log|det W|,
the same for every sample.  For a general W this costs O(D³), and so does
inverting it.  Glow (Kingma & Dhariwal 2018) parametrises W by its LU
decomposition,

    W = P L (U + diag s),

with P a fixed permutation matrix, L unit lower triangular (ones on the
diagonal), U strictly upper triangular and s a vector with no zero entry.
Then det P = ±1 and det L = 1, so

    log|det W| = Σ_i log|s_i|                       -- O(D), not O(D³),

and W⁻¹ = (U + diag s)⁻¹ L⁻¹ Pᵀ is applied by two triangular solves, O(D²)
per sample, without ever forming or inverting W.  Here s = sign ⊙ exp(log_s)
with ``sign`` ∈ {±1}ᴰ fixed and ``log_s`` trained, so s never crosses 0 and W
stays invertible whatever the optimiser does; then log|det W| = Σ_i log_s_i.

Parameters (set by the grader): ``params["lower"]`` and ``params["upper"]`` are
full D×D arrays of which only the strictly lower (resp. strictly upper)
triangle is used -- the other entries are ignored and get zero gradient --
and ``params["log_s"]`` (D,).  Fixed attributes: ``perm`` (D,) with
(P b)_i = b_{perm[i]}, and ``sign`` (D,).  Batches are rows: z[n] = W x[n],
i.e. ``z = x @ W.T``.

Directions, as everywhere in this course: ``forward`` is f: x → z (data to
latent), ``inverse`` is g = f⁻¹: z → x.  ``backward`` is the vector-Jacobian
product of the most recent pass.

Exercises (numpy only; importing ``nflows_np`` -- and scipy -- is not allowed)

1. ``LULinear.weight()`` -- W = P L (U + diag s) as a dense matrix.
2. ``solve_lower_unit(L, B)`` and ``solve_upper(U, B)`` -- triangular solves
   by forward / back substitution, for a batch of right-hand sides.
3. ``LULinear.forward(x)`` and ``LULinear.inverse(z)`` -- values and log-dets,
   without forming W⁻¹ (the inverse by your two triangular solves).
4. ``LULinear.backward(grad_out, grad_log_det)`` -- for both directions.
5. ``fit_gaussian(x_train, seed)`` -- fit an LULinear flow to Gaussian data by
   maximum likelihood (the flow's density is N(0, (WᵀW)⁻¹)).

Grade your work with::

    python -m nflows_np grade lu_linear.py --assignment lu_linear

and check your gradients yourself (the class follows the library's Flow contract)::

    import nflows_np as nf, lu_linear as hw
    layer = hw.LULinear(4, rng=0)
    nf.gradcheck.randomize_params(layer, rng=1)
    print(nf.gradcheck.check_flow(layer, x))

The student version ``lectures/homework/lu_linear.py`` is generated from the
solution with ``python -m nflows_np assign``: edit the solution, not it.
"""
import numpy as np

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


# ---- exercise 2: triangular solves ------------------------------------------------------

def solve_lower_unit(L, B):
    """Solve L y = b for every row b of B, with L (D, D) unit lower triangular.

    Only the strictly lower triangle of L is read (its diagonal is taken as 1).
    Forward substitution: y_i = b_i − Σ_{j<i} L_ij y_j, for i = 1 … D, all rows at
    once: O(N·D²).  Returns Y (N, D) with Y[n] = L⁻¹ B[n].
    """
    raise NotImplementedError("exercise: replace this line with your solution")


def solve_upper(U, B):
    """Solve U y = b for every row b of B, with U (D, D) upper triangular, non-zero diagonal.

    Only the upper triangle of U (diagonal included) is read.  Back substitution:
    y_i = (b_i − Σ_{j>i} U_ij y_j) / U_ii, for i = D … 1.  Returns Y (N, D).
    """
    raise NotImplementedError("exercise: replace this line with your solution")


# ---- exercises 1, 3, 4: the layer ---------------------------------------------------------

class LULinear(Flow):
    """Linear flow z = W x with W = P L (U + diag s), s = sign ⊙ exp(log_s).

    See the module docstring for the parameters ("lower", "upper", "log_s") and
    the fixed attributes ``perm`` and ``sign``.
    """

    def __init__(self, dim, rng=None):
        super().__init__(dim)
        rng = np.random.default_rng(rng)
        self.perm = rng.permutation(self.dim)  # (P b)_i = b[perm[i]]
        self.sign = np.ones(self.dim)
        self.add_param("lower", np.zeros((self.dim, self.dim)))
        self.add_param("upper", np.zeros((self.dim, self.dim)))
        self.add_param("log_s", np.zeros(self.dim))
        self._cache = None

    def factors(self):
        """Given: (L, U′, s) with L = I + strict lower part of "lower", U′ = U + diag s."""
        s = self.sign * np.exp(self.params["log_s"])
        lower = np.tril(self.params["lower"], -1) + np.eye(self.dim)
        upper = np.triu(self.params["upper"], 1) + np.diag(s)
        return lower, upper, s

    def weight(self):
        """W = P L (U + diag s), a dense (D, D) array."""
        raise NotImplementedError("exercise: replace this line with your solution")

    def forward(self, x):
        """z = W x for every row (without forming W: three cheap products) and
        log|det ∂z/∂x| = Σ_i log_s_i for every sample; shapes (N, D), (N,)."""
        x = self.check_input(x, "x")
        raise NotImplementedError("exercise: replace this line with your solution")

    def inverse(self, z):
        """x = W⁻¹ z = U′⁻¹ L⁻¹ Pᵀ z by your two triangular solves, and
        log|det ∂x/∂z| = −Σ_i log_s_i; shapes (N, D), (N,)."""
        z = self.check_input(z, "z")
        raise NotImplementedError("exercise: replace this line with your solution")

    def backward(self, grad_out, grad_log_det):
        """Vector-Jacobian product of the last pass (forward or inverse).

        Return ∂L/∂in (N, D) and ADD ∂L/∂lower, ∂L/∂upper, ∂L/∂log_s into
        ``grads``.  Only the strictly lower (upper) triangle of "lower" ("upper")
        is a parameter: the other entries get exactly zero gradient.  log_s acts
        twice: through s = sign ⊙ exp(log_s) on the diagonal of U′, and directly
        in the log-det.
        """
        if self._cache is None:
            raise RuntimeError("LULinear.backward: call forward or inverse first")
        raise NotImplementedError("exercise: replace this line with your solution")


# ---- given: an optimiser ------------------------------------------------------------------

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


# ---- exercise 5: maximum likelihood -------------------------------------------------------

def fit_gaussian(x_train, seed):
    """Fit one LULinear flow to ``x_train`` (N, D) by maximum likelihood; return the layer.

    Model: z = W x, z ~ N(0, I), so log p(x) = log N(W x; 0, I) + log|det W|
    (a Gaussian N(0, (WᵀW)⁻¹)).  Minimise the mean NLL with your forward and
    backward (∂NLL/∂z = z/N, ∂NLL/∂log_det = −1/N).  Use only
    ``np.random.default_rng(seed)`` for randomness.

    The grader calls ``fit_gaussian(x_train, seed)`` with 4000 points of a
    3-D Gaussian and a seed of its own, then computes, with the library's
    LULinear at the returned parameters, the expected NLL of fresh data minus
    the data's entropy, i.e. KL(data‖model), exactly: full marks for at most
    0.02 nats, half marks for 0.1.  The whole run may take 20 s.
    """
    raise NotImplementedError("exercise: replace this line with your solution")


if __name__ == "__main__":
    # Self-checks: `python lu_linear.py` once the exercises are written.
    rng = np.random.default_rng(0)
    layer = LULinear(4, rng=1)
    layer.sign[...] = [1.0, -1.0, 1.0, -1.0]
    for key in layer.params:
        layer.params[key][...] = 0.5 * rng.standard_normal(layer.params[key].shape)
    W = layer.weight()
    x = rng.normal(size=(6, 4))
    z, log_det = layer.forward(x)
    assert np.allclose(z, x @ W.T), "forward must compute z = W x"
    assert np.allclose(log_det, np.linalg.slogdet(W)[1]), "log|det ∂z/∂x| must be log|det W|"
    x_back, log_det_back = layer.inverse(z)
    assert np.allclose(x_back, x) and np.allclose(log_det + log_det_back, 0.0), "inverse(forward(x)) ≠ x"
    L = np.tril(rng.normal(size=(4, 4)), -1) + np.eye(4)
    assert np.allclose(solve_lower_unit(L, x) @ L.T, x)
    U = np.triu(rng.normal(size=(4, 4))) + 3.0 * np.eye(4)
    assert np.allclose(solve_upper(U, x) @ U.T, x)

    # backward of both passes against central differences of L = Σ g ⊙ out + Σ gl ⊙ log_det.
    g, gl, h = rng.normal(size=(6, 4)), rng.normal(size=6), 1e-6
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
