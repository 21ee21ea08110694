"""The hand-written URN gradient against autograd of the model's loss, and the fused Adam step."""

import pytest
import torch

from neurograph.optim import Adam
from neurograph.urn.backprop import Workspace, loss_and_gradients
from neurograph.urn.model import Dynamics, forward, loss_terms

D_IN, D_OUT, S, B = 3, 2, 12, 5


def _problem(seed: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn((S, S), generator=g, dtype=dtype) * 0.5
    b = torch.randn(S, generator=g, dtype=dtype) * 0.1
    b[D_IN + D_OUT :: 2] = -20.0  # every other hidden neuron silent: the sparse path has columns to skip
    x = torch.randn((B, D_IN), generator=g, dtype=dtype)
    y = torch.randint(0, D_OUT, (B,), generator=g)
    return w, b, x, y


OUTPUTS = slice(D_IN, D_IN + D_OUT)  # compiled order: inputs, outputs, hidden


def _autograd(w, b, x, y, dynamics, c_n):
    w, b = w.clone().requires_grad_(True), b.clone().requires_grad_(True)
    states = forward(w, b, x, outputs=OUTPUTS, dynamics=dynamics)
    terms = loss_terms(states, y, w, outputs=OUTPUTS, coefficients=0.0, c_n=c_n)
    terms["total"].backward()
    return terms, w.grad, b.grad, states


@pytest.mark.parametrize("update", ["plain", "residual_output", "residual_input"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "softplus", "leaky_relu"])
@pytest.mark.parametrize("output_activation", ["linear", "phi"])
@pytest.mark.parametrize("iterations", [1, 4])
@pytest.mark.parametrize("sparse", [0.0, 0.3, 0.6, 1.0])
def test_gradients_equal_autograd(update, activation, output_activation, iterations, sparse):
    """Dense (sparse=0), column-gathering (sparse=1) and mixed paths, every variant, against autograd."""
    dynamics = Dynamics(iterations, update, activation, output_activation)
    w, b, x, y = _problem(iterations)
    c_n = 0.03
    ref, gw, gb, states = _autograd(w, b, x, y, dynamics, c_n)
    r = loss_and_gradients(w, b, x, y, outputs=OUTPUTS, dynamics=dynamics, c_n=c_n, sparse=sparse)
    assert float(r.ce) == pytest.approx(float(ref["ce"].detach()), rel=1e-12)
    assert float(r.activity) == pytest.approx(float(ref["activity"].detach()), rel=1e-12)
    torch.testing.assert_close(r.grad_weight, gw, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(r.grad_bias, gb, rtol=1e-10, atol=1e-12)
    for mine, theirs in zip(r.states, states):
        torch.testing.assert_close(mine, theirs.detach(), rtol=1e-12, atol=1e-12)


def test_workspace_buffer_is_reused_and_overwritten():
    dynamics = Dynamics(4)
    ws = Workspace()
    w, b, x, y = _problem(1)
    first = loss_and_gradients(w, b, x, y, outputs=OUTPUTS, dynamics=dynamics, c_n=0.0, workspace=ws)
    kept = first.grad_weight.clone()
    w2, b2, x2, y2 = _problem(2)
    second = loss_and_gradients(w2, b2, x2, y2, outputs=OUTPUTS, dynamics=dynamics, c_n=0.0, workspace=ws)
    assert second.grad_weight.data_ptr() == first.grad_weight.data_ptr()
    again = loss_and_gradients(w, b, x, y, outputs=OUTPUTS, dynamics=dynamics, c_n=0.0, workspace=ws)
    torch.testing.assert_close(again.grad_weight, kept, rtol=0, atol=0)


def _adam_pair(dtype):
    g = torch.Generator().manual_seed(7)
    p = torch.randn((20, 20), generator=g, dtype=dtype)
    p[0, :5] = 0.0  # sign(0) = 0: no L1 push at exactly zero
    mask = (torch.rand((20, 20), generator=g) > 0.2).to(dtype)
    return p, mask, g


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("per_entry", [False, True])
def test_fused_adam_l1_equals_torch_path(dtype, per_entry):
    p, mask, g = _adam_pair(dtype)
    coef = torch.rand(p.shape, generator=g, dtype=dtype) * 0.01 if per_entry else 0.003
    fused, plain = p.clone(), p.clone()
    opt_fused, opt_plain = Adam(lr=0.01), Adam(lr=0.01)
    opt_plain._fused = lambda *a: None  # force the torch path
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for _ in range(5):
        grad = torch.randn(p.shape, generator=g, dtype=dtype)
        expected = float((fused.double().abs() * (coef.double() if per_entry else coef)).sum())
        got = opt_fused.step({"w": fused}, {"w": grad}, {"w": mask}, l1={"w": coef})["w"]
        assert got == pytest.approx(expected, rel=tol)  # the penalty of the weights before the step
        assert opt_plain.step({"w": plain}, {"w": grad}, {"w": mask}, l1={"w": coef})["w"] == pytest.approx(got, rel=tol)
    torch.testing.assert_close(fused, plain, rtol=tol, atol=tol)
    for name in ("m", "v"):
        torch.testing.assert_close(opt_fused.state[name]["w"], opt_plain.state[name]["w"], rtol=tol, atol=tol)
    frozen = mask == 0
    assert torch.equal(fused[frozen], p[frozen])  # absent connections stay as they were
    assert not torch.equal(fused[~frozen], p[~frozen])


def test_l1_subgradient_by_hand():
    """One Adam step from zero memories moves each weight by lr against sign(grad + coef sign(w))."""
    p = torch.tensor([0.5, -0.5, 0.0, 0.5], dtype=torch.float64)
    grad = torch.tensor([0.0, 0.0, 0.0, -1.0], dtype=torch.float64)
    opt = Adam(lr=0.1, eps=0.0)
    opt.step({"w": p}, {"w": grad}, {}, l1={"w": 0.2})
    # first Adam step is -lr * sign(g): g = (0.2, -0.2, 0, -0.8)
    torch.testing.assert_close(p, torch.tensor([0.4, -0.4, float("nan"), 0.6], dtype=torch.float64), equal_nan=True)


def test_sparse_path_reads_fewer_columns_and_matches_dense():
    """With most hidden neurons silent, iterations 2.. gather only the active columns."""
    from neurograph.urn.backprop import _forward
    from neurograph.urn.model import active_columns

    dynamics = Dynamics(4)
    w, b, x, y = _problem(5)
    _, _, sources = _forward(w, b, x, outputs=OUTPUTS, dynamics=dynamics, sparse=1.0)
    assert sources[0] is None and all(c is not None and len(c) < S for c in sources[1:])
    states, _, dense_sources = _forward(w, b, x, outputs=OUTPUTS, dynamics=dynamics, sparse=0.0)
    assert all(c is None for c in dense_sources)
    assert active_columns(states[2], 0.0) is None
    assert torch.equal(active_columns(states[2], 1.0), torch.nonzero(states[2].ne(0).any(0)).squeeze(1))


@pytest.mark.parametrize("update", ["plain", "residual_output", "residual_input"])
def test_sparse_forward_equals_dense(update):
    dynamics = Dynamics(4, update)
    w, b, x, _ = _problem(6)
    dense = forward(w, b, x, outputs=OUTPUTS, dynamics=dynamics)
    gathered = forward(w, b, x, outputs=OUTPUTS, dynamics=dynamics, sparse=1.0)
    for d, g in zip(dense, gathered):
        torch.testing.assert_close(g, d, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rows_given", [False, True])
@pytest.mark.parametrize("cols_given", [False, True])
def test_weight_gradient_block_equals_dense_product(rows_given, cols_given):
    from neurograph.urn.backprop import _add_block

    g = torch.Generator().manual_seed(11)
    d_pre = torch.randn((5, S), generator=g, dtype=torch.float64)
    n_prev = torch.randn((5, S), generator=g, dtype=torch.float64)
    rows, cols = torch.tensor([1, 4, 7]), torch.tensor([0, 2, 3, 9])
    if rows_given:  # the block holds every nonzero column
        d_pre[:, [i for i in range(S) if i not in rows.tolist()]] = 0.0
    if cols_given:
        n_prev[:, [i for i in range(S) if i not in cols.tolist()]] = 0.0
    start = torch.randn((S, S), generator=g, dtype=torch.float64)
    out = start.clone()
    _add_block(out, d_pre, n_prev, rows if rows_given else None, cols if cols_given else None)
    torch.testing.assert_close(out, start + d_pre.t() @ n_prev, rtol=1e-12, atol=1e-12)
