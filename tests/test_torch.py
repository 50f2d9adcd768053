"""adla.torch: every operator of the harness through torch.autograd (gradcheck in float64),
equal to adla on NumPy arrays; dtypes, devices, bad input and second derivatives."""
import numpy as np
import pytest

import adla
import harness
from harness import CASES, CASE_IDS, DIMS, call_forward, make_inputs

torch = pytest.importorskip("torch")
import adla.torch as at  # noqa: E402


def structured(row, opts, name, t):
    return harness.structured(row, opts, name, t, torch.tril, torch.triu,
                              lambda a: a.transpose(-1, -2),
                              lambda a: torch.diag_embed(torch.diagonal(a, 0, -2, -1)))


@pytest.mark.parametrize("row, opts", CASES, ids=CASE_IDS)
def test_gradcheck_and_values(row, opts):
    inputs = make_inputs(row, opts, [(2,)] * len(row.operands(opts, row.dims or DIMS)))
    names = list(inputs)
    diff = [n for n in names if n in row.differentiable]
    tensors = {n: torch.from_numpy(v.copy()) for n, v in inputs.items()}

    def f(*free):
        operands = dict(tensors)
        for n, t in zip(diff, free):
            operands[n] = structured(row, opts, n, t)
        out = getattr(at, row.name)(*operands.values(), **opts)
        if row.cotangents is None:
            return out
        # Only the differentiable outputs: gradcheck pairs its numerical and analytical
        # Jacobians by position, and miscounts around a non-differentiable one.
        return tuple(out[i] for i in row.cotangents)

    free = [tensors[n].clone().requires_grad_(True) for n in diff]
    assert torch.autograd.gradcheck(f, free, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)

    out = getattr(at, row.name)(*tensors.values(), **opts)
    expected = call_forward(row, opts, inputs)
    for o, e in zip(out if isinstance(out, tuple) else (out,),
                    expected if isinstance(expected, tuple) else (expected,)):
        assert isinstance(o, torch.Tensor) and o.dtype == torch.float64
        np.testing.assert_array_equal(o.numpy(), e)


def spd(batch=(3,), n=4, dtype=torch.float64):
    X = torch.randn(batch + (n, n), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return (X @ X.transpose(-1, -2) + n * torch.eye(n, dtype=torch.float64)).to(dtype)


def test_cpu_tensors_shared_without_copies_and_gradients_in_input_dtype():
    A = spd(dtype=torch.float32).requires_grad_(True)
    L = at.potrf(A)
    assert L.dtype == torch.float32
    np.testing.assert_array_equal(L.detach().numpy(), adla.potrf(A.detach().numpy()))
    L.sum().backward()
    assert A.grad.dtype == torch.float32
    B = torch.ones(3, 4, 2, dtype=torch.float64, requires_grad=True)
    X = at.trsm(L.detach(), B)                  # float32 with float64: float64, as in adla
    assert X.dtype == torch.float64
    X.sum().backward()
    assert B.grad.dtype == torch.float64


def test_inputs_unchanged_and_views_accepted():
    A = spd((3,))
    before = A.clone()
    L = at.potrf(A.transpose(-1, -2))           # a non-contiguous view
    assert torch.equal(A, before)
    np.testing.assert_array_equal(L.numpy(), adla.potrf(before.numpy()))


def test_second_derivative_is_a_clear_error():
    A = spd().requires_grad_(True)
    (g,) = torch.autograd.grad(at.sumlogdiag(at.potrf(A)).sum(), A, create_graph=True)
    with pytest.raises(RuntimeError, match=r"adla\.torch\.\w+: second derivatives are not supported"):
        g.sum().backward()


def test_bad_input():
    with pytest.raises(TypeError, match=r"adla\.torch\.trsm: operand B must be a torch\.Tensor"):
        at.trsm(spd(), np.ones((3, 4, 2)))
    with pytest.raises(TypeError, match=r"adla\.torch\.potrf: operand A has unsupported dtype"):
        at.potrf(spd().to(torch.float16))
    with pytest.raises(TypeError, match=r"unsupported dtype torch.complex128"):
        at.potrf(spd().to(torch.complex128))
    with pytest.raises(adla.LinAlgError, match=r"batch index \(1,\)"):
        A = spd()
        A[1] = -torch.eye(4, dtype=torch.float64)
        at.potrf(A)


def test_failures_as_in_adla_without_check():
    A = spd()
    A[1] = -torch.eye(4, dtype=torch.float64)
    L = at.potrf(A, check=False)
    assert torch.isnan(L[1]).all() and not torch.isnan(L[0]).any()


def test_unused_outputs_and_non_differentiable_outputs():
    A = torch.randn(3, 4, 4, dtype=torch.float64, requires_grad=True)
    sign, logabsdet = at.slogdet(A)
    assert not sign.requires_grad
    logabsdet.sum().backward()
    np.testing.assert_allclose(A.grad.numpy(), np.linalg.inv(A.detach().numpy()).transpose(0, 2, 1),
                               rtol=1e-10)
    S = spd().requires_grad_(True)
    U, lam = at.syevd(S)
    lam.sum().backward()                        # no cotangent for U
    np.testing.assert_allclose(S.grad.numpy(), np.broadcast_to(np.eye(4), (3, 4, 4)), atol=1e-12)
