"""Shifted-window and temporal attention against brute-force references over all token pairs."""
import pytest
import torch

from model.blocks import TemporalAttention, WindowAttention


def brute_force(branch, x, allowed, bias_of):
    """Global attention over all T*F tokens of x (B, T, F, C) where `allowed(t1, f1, t2, f2)`,
    plus bias `bias_of(t1, f1, t2, f2)` -> (h,). Returns (B, T, F, C)."""
    b, t, f, c = x.shape
    q, k, v = branch.attn.qkv(x.reshape(b, t * f, c))            # (B, L, h, d)
    q, k, v = (z.transpose(1, 2) for z in (q, k, v))              # (B, h, L, d)
    heads = q.shape[1]
    mask = torch.full((heads, t * f, t * f), float("-inf"))
    for i in range(t * f):
        t1, f1 = divmod(i, f)
        for j in range(t * f):
            t2, f2 = divmod(j, f)
            if allowed(t1, f1, t2, f2):
                mask[:, i, j] = bias_of(t1, f1, t2, f2)
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5 + mask
    o = scores.softmax(-1) @ v                                    # (B, h, L, d)
    return branch.attn.merge(o.transpose(1, 2)).reshape(b, t, f, c)


def same(a, b, w, s):
    return (a - s) // w == (b - s) // w


def with_random_bias(branch):
    """`branch` with its relative-position bias table drawn at random (it starts at zero, which would hide
    a wrongly indexed bias)."""
    with torch.no_grad():
        branch.rel_bias.normal_()
    return branch


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("t,f", [(8, 8), (13, 11), (5, 3)])
def test_offline_shifted_window_mask_matches_brute_force(shifted, t, f):
    torch.manual_seed(0)
    wt, wf = 4, 4
    branch = with_random_bias(WindowAttention(16, 2, 2.0, (wt, wf), shifted, causal=False).eval())
    st, sf = branch.st, branch.sf
    x = torch.randn(2, t, f, 16)
    table = branch.rel_bias.view(2, 2 * wt - 1, 2 * wf - 1)
    ref = brute_force(branch, x,
                      lambda t1, f1, t2, f2: same(t1, t2, wt, st) and same(f1, f2, wf, sf),
                      lambda t1, f1, t2, f2: table[:, t1 - t2 + wt - 1, f1 - f2 + wf - 1])
    out, _ = branch.mix(x, [], 0)
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("t,f,t0", [(9, 8, 0), (11, 6, 0), (7, 10, 0)])
def test_causal_window_attention_matches_brute_force(shifted, t, f, t0):
    torch.manual_seed(1)
    wt, wf = 4, 4
    branch = with_random_bias(WindowAttention(16, 2, 2.0, (wt, wf), shifted, causal=True).eval())
    st, sf = branch.st, branch.sf
    x = torch.randn(1, t, f, 16)
    table = branch.rel_bias.view(2, wt, 2 * wf - 1)
    state = [torch.zeros(s) for s in branch.state_shapes(1, f)]
    ref = brute_force(branch, x,
                      lambda t1, f1, t2, f2: t2 <= t1 and (t1 + st) // wt == (t2 + st) // wt and same(f1, f2, wf, sf),
                      lambda t1, f1, t2, f2: table[:, t1 - t2, f1 - f2 + wf - 1])
    out, _ = branch.mix(x, state, t0)
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()


@pytest.mark.parametrize("t,window", [(12, 4), (5, 8), (20, 1)])
def test_causal_temporal_attention_matches_brute_force(t, window):
    torch.manual_seed(2)
    branch = with_random_bias(TemporalAttention(16, 2, 2.0, window, causal=True).eval())
    x = torch.randn(1, t, 3, 16)
    state = [torch.zeros(s) for s in branch.state_shapes(1, 3)]
    ref = brute_force(branch, x,
                      lambda t1, f1, t2, f2: f1 == f2 and 0 <= t1 - t2 < window,
                      lambda t1, f1, t2, f2: branch.rel_bias[:, t1 - t2])
    out, _ = branch.mix(x, state, 0)
    assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()


@pytest.mark.parametrize("cls", ["tsa", "swa"])
def test_causal_branch_in_pieces_equals_whole(cls):
    """Carrying the state across calls (any split, t0 advancing) equals one call over all frames."""
    torch.manual_seed(3)
    branch = (TemporalAttention(16, 2, 2.0, 6, causal=True) if cls == "tsa"
              else WindowAttention(16, 2, 2.0, (4, 4), True, causal=True)).eval()
    x = torch.randn(1, 23, 8, 16)
    state = [torch.zeros(s) for s in branch.state_shapes(1, 8)]
    whole, _ = branch.mix(x, state, 0)
    parts, t0 = [], 0
    for n in (1, 5, 2, 7, 1, 7):
        y, state = branch.mix(x[:, t0:t0 + n], state, t0)
        parts.append(y)
        t0 += n
    assert torch.allclose(torch.cat(parts, 1), whole, atol=1e-5)


@pytest.mark.parametrize("cls,shifted", [("tsa", False), ("swa", False), ("swa", True)])
@pytest.mark.parametrize("t", [2, 3, 9, 23])
def test_from_start_path_equals_the_blocked_path_with_gradients(cls, shifted, t):
    """The offline forward's whole-window layout (t0 = 0, several frames) gives the same outputs, next state
    and gradients (learned bias included) as the general blocked path, here reached through a t0 = 0
    call of one frame followed by the rest at t0 = 1."""
    torch.manual_seed(4)
    branch = with_random_bias((TemporalAttention(16, 2, 2.0, 6, causal=True) if cls == "tsa"
                               else WindowAttention(16, 2, 2.0, (4, 4), shifted, causal=True)).train())
    x = torch.randn(2, t, 8, 16, requires_grad=True)
    state = [torch.randn(s) for s in branch.state_shapes(2, 8)]  # at t0 = 0 the state must not matter
    whole, s_whole = branch.mix(x, state, 0)
    first, s1 = branch.mix(x[:, :1], state, 0)
    rest, s2 = branch.mix(x[:, 1:], s1, 1)
    assert torch.allclose(whole, torch.cat([first, rest], 1), atol=1e-5)
    for a, b in zip(s_whole, s2):
        assert torch.allclose(a, b, atol=1e-6)
    g = torch.randn_like(whole)
    grads = torch.autograd.grad((whole * g).sum(), [x, branch.rel_bias, branch.attn.qkv_proj.weight])
    ref = torch.autograd.grad((torch.cat([first, rest], 1) * g).sum(), [x, branch.rel_bias, branch.attn.qkv_proj.weight])
    for a, b in zip(grads, ref):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
