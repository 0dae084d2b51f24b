# SPDX-License-Identifier: Apache-2.0
"""Ternary fine-tuning (issue 11): the twin, the lowering back to the integer contract, and a
tiny-budget fine-tune on the digits MLP that is bit-exact emulator == host C == QEMU firmware."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ternembed import emulate
from ternembed.errors import InputError
from ternembed.pipeline import build_plan
from ternembed.quantize.plan_pass import ternarize_plan
from ternembed.quantize.policy import TernaryConfig

jax = pytest.importorskip("jax", reason="fine-tuning needs the train extra: pip install -e '.[train]'")
pytest.importorskip("optax", reason="fine-tuning needs the train extra: pip install -e '.[train]'")

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"


@pytest.fixture(scope="module")
def digits():
    plan, _ = build_plan(DIGITS / "digits_int8.tflite")
    z = np.load(DIGITS / "digits_test.npz")
    x, y = z["x_int8"], z["y"]
    tplan, _ = ternarize_plan(plan, TernaryConfig(method="fgq", group=16, first_last="ternary"), [x[:200]])
    return plan, tplan, x, y


def test_twin_matches_the_plan_and_lowers_back_unchanged(digits):
    import jax.numpy as jnp
    from ternembed.finetune.train import lower_params
    from ternembed.finetune.twin import Twin
    plan, tplan, x, _ = digits
    tw = Twin(tplan)
    params = tw.init_params()
    z = np.asarray(tw.logits(params, jnp.asarray(x[:100], jnp.float32)))
    ref = emulate.run(tplan, [x[:100]], keep_all=True)[tw.logit_buffer].reshape(100, -1)
    ref = (ref - tw.logit_zp) * tw.logit_scale
    # float requantization vs fixed point: at most one output step apart
    assert np.abs(z - ref).max() <= 1.01 * tw.logit_scale
    low = lower_params(tplan, plan, tw, params)
    for a, b in zip(low.steps, tplan.steps):
        for k, v in b.params.items():
            if k != "method":
                assert np.array_equal(np.asarray(a.params[k]), np.asarray(v)), k


@pytest.mark.parametrize("opts, asym", [(dict(method="fgq", group=16), True), (dict(method="trn", group=16, planes=2), False),
                                        (dict(method="trn", group=16, planes=3), False),
                                        (dict(method="offset", group=16), False),
                                        (dict(method="pow2", group=16, levels=3), False)],
                         ids=["ttq", "trn2", "trn3", "rtn", "gtc"])
def test_epoch_0_is_the_post_training_plan(digits, opts, asym):
    """Every form lowers its start to the post-training plan's outputs (TRN re-derives its plane
    shifts: before it kept the finest plane's unit, not the plan's, and epoch 0 differed)."""
    from ternembed.finetune.train import lower_params
    from ternembed.finetune.twin import Twin
    plan, _, x, _ = digits
    tplan, _ = ternarize_plan(plan, TernaryConfig(first_last="ternary", **opts), [x[:200]])
    tw = Twin(tplan, asymmetric=asym)
    low = lower_params(tplan, plan, tw, tw.init_params())
    assert np.array_equal(emulate.run(low, [x])[0], emulate.run(tplan, [x])[0])


@pytest.fixture(scope="module")
def tuned(digits):
    from ternembed.finetune import finetune_plan
    plan, tplan, x, y = digits
    return finetune_plan(plan, tplan, x[:300], epochs=3, lr=0.003, progress=False, seed=1)


def test_finetune_is_deterministic_and_keeps_the_best(digits, tuned):
    from ternembed.finetune import finetune_plan
    plan, tplan, x, _ = digits
    ft, rep = tuned
    assert rep.history[0]["epoch"] == 0 and len(rep.history) == 4
    assert rep.best["agreement"] == max(h["agreement"] for h in rep.history)
    ft2, _ = finetune_plan(plan, tplan, x[:300], epochs=3, lr=0.003, progress=False, seed=1)
    assert np.array_equal(emulate.run(ft, [x])[0], emulate.run(ft2, [x])[0])


def test_finetuned_plan_is_bit_exact_on_host_c(digits, tuned):
    from ternembed.hostcheck import host_run
    _, _, x, _ = digits
    ft, _ = tuned
    want = emulate.run(ft, [x[:64]])[0]
    for dsp in (False, True):
        assert np.array_equal(host_run(ft, [x[:64]], emulate_dsp=dsp)[0], want)


@pytest.mark.qemu
def test_finetuned_plan_is_bit_exact_on_qemu(digits, tuned, tmp_path):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found")
    from ternembed.boards import get_board
    from ternembed.build import build_project
    from ternembed.device.qemu import run_semihosted
    from ternembed.render import export_project
    _, _, x, _ = digits
    ft, _ = tuned
    board = "qemu_mps2_an386"
    exp = export_project(ft, board, tmp_path / "ft", test_inputs=[x[:8]])
    built = build_project(exp.out_dir, board, use_platformio=False)
    assert built.checks_ok and built.fits
    code, out = run_semihosted(built.elf, get_board(board), timeout=120.0, icount=False)
    text = out.decode(errors="replace")
    assert f"TE-SELFTEST PASS {exp.test_samples}/{exp.test_samples}" in text, text[-2000:]
    assert code == 0


def test_bad_training_data_is_one_clear_error(digits):
    from ternembed.finetune import finetune_plan
    plan, tplan, x, y = digits
    with pytest.raises(InputError, match="shape"):
        finetune_plan(plan, tplan, x[:, :10], progress=False)
    with pytest.raises(InputError, match="int8"):
        finetune_plan(plan, tplan, x.astype(np.float32), progress=False)
    with pytest.raises(InputError, match="no samples"):
        finetune_plan(plan, tplan, x[:0], progress=False)
    with pytest.raises(InputError, match="labels"):
        finetune_plan(plan, tplan, x[:10], y[:9], progress=False)


def test_without_jax_one_line_naming_the_extra(monkeypatch):
    import builtins
    from ternembed.finetune import require_jax
    real = builtins.__import__

    def no_jax(name, *a, **k):
        if name.split(".")[0] in ("jax", "optax"):
            raise ImportError(f"No module named {name!r}", name=name)
        return real(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_jax)
    with pytest.raises(InputError, match=r"ternembed\[train\]"):
        require_jax()
