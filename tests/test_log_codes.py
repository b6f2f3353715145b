"""RMSprop averages as log2 codes (``ssmlib.agents.log_codes``): what an I2A campaign run commits."""

import pytest
import torch

from ssmlib.agents import log_codes


def averages(n=4096, seed=0):
    """Square averages spanning the orders of magnitude a trained agent's do, with exact zeros (unused rows)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.exp2(torch.empty(n).uniform_(-60, -8, generator=g))
    v[:7] = 0.0
    return v


def test_codes_are_uint8_and_decode_within_half_a_level():
    v = averages()
    codes, rng = log_codes.encode(v, 8)
    assert codes.dtype == torch.uint8 and codes.shape == v.shape and int(codes.max()) == 255 and int(codes.min()) == 0
    lo, hi = rng.tolist()
    assert lo == pytest.approx(torch.log2(torch.tensor(log_codes.FLOOR)).item())
    assert hi == pytest.approx(torch.log2(v.max()).item())
    v_hat = log_codes.decode(codes, rng, 8)
    kept = v > log_codes.FLOOR
    err = (torch.log2(v_hat[kept]) - torch.log2(v[kept])).abs()
    assert err.max() <= (hi - lo) / 255 / 2 + 1e-4  # rounding to the nearest of 256 levels
    assert torch.allclose(v_hat[~kept], torch.full_like(v_hat[~kept], log_codes.FLOOR), rtol=1e-3)


@pytest.mark.parametrize("bits,width", [(8, 0.04), (4, 1.0)])
def test_the_restarted_step_size_moves_less_with_more_bits(bits, width):
    f = log_codes.step_factors(averages(), bits)  # sqrt of half a level: 2^(52 / (2^bits - 1) / 4) - 1 at most
    assert (f - 1).abs().max() < width
    if bits == 4:  # 16 levels over 52 octaves: visibly coarser than 8 bits
        assert (f - 1).abs().max() > 0.1


def test_encode_and_decode_averages_touch_only_square_averages():
    tensors = {"optim.state.0.square_avg": averages(), "optim.state.0.step": torch.tensor(5.0),
               "agent.fc.weight": torch.randn(3, 3), "optim.state.1.square_avg": torch.full((2, 2), 1e-3)}
    coded = log_codes.encode_averages(tensors, 8)
    assert coded["optim.state.0.square_avg"].dtype == torch.uint8
    assert set(coded) == set(tensors) | {"log2_range.optim.state.0.square_avg", "log2_range.optim.state.1.square_avg"}
    assert coded["agent.fc.weight"] is tensors["agent.fc.weight"] and coded["optim.state.0.step"] is tensors["optim.state.0.step"]
    back = log_codes.decode_averages(coded, 8)
    assert set(back) == set(tensors)
    assert torch.allclose(back["optim.state.1.square_avg"], tensors["optim.state.1.square_avg"])  # a constant tensor
    kept = tensors["optim.state.0.square_avg"] > log_codes.FLOOR
    assert torch.allclose(back["optim.state.0.square_avg"][kept], tensors["optim.state.0.square_avg"][kept], rtol=0.1)


def test_bits_outside_a_byte_are_refused():
    with pytest.raises(ValueError, match="1..8"):
        log_codes.encode(averages(), 9)
