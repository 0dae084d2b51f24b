# SPDX-License-Identifier: Apache-2.0
"""The command line: clear one-line errors with exit code 2, JSON output, files written atomically."""
import json
import subprocess
from pathlib import Path
import sys

import numpy as np
import pytest

from shared_data import MODELS

HELLO = MODELS / "tflm/hello_world_int8.tflite"


def run(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "ternembed", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def assert_clean_error(code, out, err, *words):
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


def make_unsupported_model(tmp_path):
    """hello_world with its second op re-labelled as an op we do not run (LSTM)."""
    from tflite_micro import runtime
    import flatbuffers
    m = runtime.convert_bytearray_to_object(bytearray(HELLO.read_bytes()))
    code = type(m.operatorCodes[0])()
    code.builtinCode = code.deprecatedBuiltinCode = 16  # LSTM
    code.version = 1
    m.operatorCodes.append(code)
    m.subgraphs[0].operators[1].opcodeIndex = len(m.operatorCodes) - 1
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "with_lstm.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


@pytest.mark.parametrize("content,words", [
    (b"", ["not a .tflite model"]),
    (HELLO.read_bytes()[:900], ["damaged or truncated"]),
    (np.random.default_rng(0).bytes(5000), ["not a .tflite model"]),
])
def test_broken_models_give_one_line(tmp_path, content, words):
    path = tmp_path / "m.tflite"
    path.write_bytes(content)
    assert_clean_error(*run("inspect", path), "m.tflite", *words)


def test_random_bytes_with_the_right_identifier(tmp_path):
    data = bytearray(np.random.default_rng(1).bytes(3000))
    data[4:8] = b"TFL3"
    path = tmp_path / "r.tflite"
    path.write_bytes(bytes(data))
    assert_clean_error(*run("inspect", path), "r.tflite")


def test_missing_path():
    assert_clean_error(*run("inspect", "/nonexistent/model.tflite"), "no such file")


def test_unsupported_op_names_index_op_and_supported_list(tmp_path):
    path = make_unsupported_model(tmp_path)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 1), np.int8))
    code, out, err = run("emulate", path, "--input", x)
    assert_clean_error(code, out, err, "op 1", "LSTM", "not supported", "FULLY_CONNECTED")
    code, out, err = run("inspect", path)
    assert code == 0 and "no: op LSTM is not supported" in out


def test_shared_lstm_model_is_refused_clearly(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 28, 28), np.int8))
    assert_clean_error(*run("emulate", MODELS / "unsupported/trained_lstm_int8.tflite", "-i", x),
                       "UNIDIRECTIONAL_SEQUENCE_LSTM", "not supported")


def test_wrong_input_shape_and_dtype(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 2), np.int8))
    assert_clean_error(*run("emulate", HELLO, "-i", x), "shape", "[samples, 1]")
    x.write_bytes(b"garbage")
    assert_clean_error(*run("emulate", HELLO, "-i", x), "x.npy")


def test_float_data_is_quantized_with_the_input_scale(tmp_path):
    """emulate -i takes float data for an int8 input as validate, --eval and finetune do: quantized
    with the input's scale and zero point (before, emulate alone refused it)."""
    from ternembed.data import to_plan_inputs
    from ternembed.pipeline import build_plan
    plan, _ = build_plan(HELLO)
    xf = np.linspace(0, 6.28, 9, dtype=np.float32).reshape(9, 1)
    np.save(tmp_path / "xf.npy", xf)
    np.save(tmp_path / "xq.npy", to_plan_inputs(plan, [xf])[0])
    assert np.unique(np.load(tmp_path / "xq.npy")).size == 9  # really quantized, not all one value
    for name in ("xf", "xq"):
        assert run("emulate", HELLO, "-i", tmp_path / f"{name}.npy", "-o", tmp_path / f"y_{name}.npy")[0] == 0
    assert np.array_equal(np.load(tmp_path / "y_xf.npy"), np.load(tmp_path / "y_xq.npy"))


def test_float_model_without_calibration_names_the_flag(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((3, 1), np.float32))
    assert_clean_error(*run("emulate", MODELS / "tflm/hello_world_float.tflite", "-i", x), "--calib")


def test_debug_shows_the_traceback(tmp_path):
    code, out, err = run("--debug", "inspect", "/nonexistent.tflite")
    assert code == 2 and "Traceback" in err


def test_inspect_json_and_table():
    code, out, err = run("inspect", MODELS / "mlperf_ic/pretrainedResnet_quant.tflite", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["kind"] == "int8" and len(info["ops"]) == 16
    assert info["totals"]["macs"] == sum(op["macs"] for op in info["ops"]) > 10_000_000
    assert all(op["supported"] for op in info["ops"])
    code, out, _ = run("inspect", MODELS / "mlperf_ic/pretrainedResnet_quant.tflite")
    assert code == 0 and "CONV_2D" in out and "total:" in out


def test_emulate_writes_outputs(tmp_path):
    x = np.arange(-5, 5, dtype=np.int8).reshape(10, 1)
    np.save(tmp_path / "x.npy", x)
    code, out, err = run("emulate", HELLO, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--json")
    assert code == 0, err
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (10, 1) and y.dtype == np.int8
    assert json.loads(out)["samples"] == 10
    assert [p.name for p in tmp_path.iterdir()] and not list(tmp_path.glob("tmp*"))
    # any file name holds the .npy (np.save on a path would have added ".npy" beside an empty file)
    assert run("emulate", HELLO, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.out")[0] == 0
    assert np.array_equal(np.load(tmp_path / "y.out"), y)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy", "y.out"]


def test_help_reads_well():
    code, out, _ = run("--help")
    assert code == 0 and "inspect" in out and "emulate" in out
    for cmd in ("inspect", "emulate"):
        code, out, _ = run(cmd, "--help")
        assert code == 0 and "usage:" in out
    code, out, err = run()
    assert code == 2


DIGITS = Path(__file__).resolve().parent.parent / "examples/digits"


def test_export_unknown_board_lists_the_known_ones(tmp_path):
    code, out, err = run("export", DIGITS / "digits_int8.tflite", "--board", "nucleo_zz", "-o", tmp_path / "p")
    assert_clean_error(code, out, err, "nucleo_zz", "qemu_mps2_an386", "nucleo_f446re")
    assert not (tmp_path / "p").exists()


def test_export_refuses_a_non_empty_folder_without_force(tmp_path):
    (tmp_path / "mine.txt").write_text("user data")
    code, out, err = run("export", DIGITS / "digits_int8.tflite", "-b", "nucleo", "-o", tmp_path, "--method", "int8")
    assert_clean_error(code, out, err, "--force")
    assert (tmp_path / "mine.txt").read_text() == "user data"


def test_export_as_on_the_card_needs_no_output_flag(tmp_path):
    """`ternembed export model.tflite --board nucleo`: a project in ./MODEL-BOARD, the next command,
    a note that nothing was measured without --calib; the same command again refuses to overwrite."""
    model = tmp_path / "model.tflite"
    model.write_bytes((DIGITS.parent / "mnist_cnn/mnist_cnn_int8.tflite").read_bytes())
    code, out, err = run("export", "model.tflite", "--board", "nucleo", cwd=tmp_path)
    assert code == 0, err
    project = tmp_path / "model-nucleo_f446re"
    assert (project / "ternembed_plan.json").is_file() and (project / "report.json").is_file()
    assert "next: ternembed build model-nucleo_f446re" in out
    assert "no --calib: the ternary layers' quality was not measured" in out
    assert_clean_error(*run("export", "model.tflite", "--board", "nucleo", cwd=tmp_path), "--force")
    # the digits MLP's default export ends every layer int8 (its small ternary FCs are estimated slower):
    # nothing ternary, so no note about ternary quality
    code, out, err = run("export", DIGITS / "digits_int8.tflite", "--board", "nucleo", "-o", tmp_path / "d")
    assert code == 0, err
    assert "> int8" in out and "quality was not measured" not in out


def test_float_export_without_calibration_says_what_data_is_enough(tmp_path):
    code, out, err = run("export", MODELS / "tflm/hello_world_float.tflite", "-b", "nucleo", "-o", tmp_path / "p")
    assert_clean_error(code, out, err, "--calib", "a few hundred real inputs")
    assert not (tmp_path / "p").exists()


def test_export_budget_needs_calibration(tmp_path):
    code, out, err = run("export", DIGITS / "digits_int8.tflite", "-b", "nucleo", "-o", tmp_path / "p",
                         "--budget-bits", "3")
    assert_clean_error(code, out, err, "--calib")


def test_export_int8_then_build_reports_matching_sizes(tmp_path):
    from shutil import which
    if which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not found: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi")
    code, out, err = run("export", DIGITS / "digits_int8.tflite", "-b", "qemu_mps2_an386", "-o", tmp_path / "p",
                         "--method", "int8", "--eval", DIGITS / "digits_test.npz", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["evaluation"]["accuracy"] > 0.9 and (tmp_path / "p" / "report.json").exists()
    code, out, err = run("build", tmp_path / "p", "--json")
    assert code == 0, err
    built = json.loads(out)
    assert built["fits"] and built["checks_ok"]
    weights = next(c for c in built["checks"] if c["name"] == "weights")
    assert weights["planned"] == weights["measured"] == report["weight_bytes"]


def test_export_with_4bit_activations_is_bit_exact_on_qemu(tmp_path):
    """--act-bits 4 changes only requantization constants, so the same C kernels must still match."""
    from conftest import require_tool
    from shared_data import ad_windows
    require_tool("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi")
    require_tool("qemu-system-arm", "qemu-system-arm")
    np.savez(tmp_path / "ad.npz", x=ad_windows())
    code, out, err = run("export", MODELS / "mlperf_ad/ad01_int8.tflite", "-b", "qemu_mps2_an386",
                         "-o", tmp_path / "p", "--act-bits", "4", "--calib", tmp_path / "ad.npz", "--json")
    assert code == 0, err
    assert "4-bit grid" in " ".join(json.loads(out)["notes"])
    code, out, err = run("validate", tmp_path / "p", "--qemu", "--data", tmp_path / "ad.npz",
                         "--max-samples", "40", "--json", "-q")
    assert code == 0, err
    assert json.loads(out)["agreement"]["outputs_bit_exact"] == 40


def test_missing_cross_compiler_is_named_with_its_package(tmp_path):
    """make alone would only say 'failed': the build names the missing compiler and its apt package."""
    import os
    import shutil
    code, out, err = run("export", DIGITS / "digits_int8.tflite", "-b", "qemu_mps2_an386", "-o", tmp_path / "p",
                         "--method", "int8")
    assert code == 0, err
    bin_dir = tmp_path / "bin"  # a PATH with make but no arm-none-eabi-* tools
    bin_dir.mkdir()
    for tool in ("make", "sh"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    proc = subprocess.run([sys.executable, "-m", "ternembed", "build", str(tmp_path / "p")], capture_output=True,
                          text=True, env={**os.environ, "PATH": str(bin_dir)})
    assert_clean_error(proc.returncode, proc.stdout, proc.stderr, "arm-none-eabi-gcc not found",
                       "gcc-arm-none-eabi")


def test_an_endless_file_is_refused_before_it_is_read_whole():
    assert_clean_error(*run("inspect", "/dev/zero"), "/dev/zero", "larger than 64 MB")


@pytest.mark.parametrize("args,words", [
    (["export", "M", "-b", "nucleo", "--group", "0"], ["--group", "4..64 or 'channel'"]),
    (["export", "M", "-b", "nucleo", "--group", "1000"], ["--group", "4..64"]),
    (["export", "M", "-b", "nucleo", "--budget-bits", "nan"], ["--budget-bits", "finite"]),
    (["export", "M", "-b", "nucleo", "--percentile", "200"], ["--percentile", "<= 49"]),
    (["export", "M", "-b", "nucleo", "--min-agreement", "1.5"], ["--min-agreement"]),
    (["validate", "D", "--data", "x.npz", "--max-samples", "0"], ["--max-samples", ">= 1"]),
    (["validate", "D", "--data", "x.npz", "--max-samples", "-5"], ["--max-samples"]),
    (["validate", "D", "--data", "x.npz", "--timeout", "nan"], ["--timeout", "finite"]),
    (["validate", "D", "--data", "x.npz", "--timeout", "0"], ["--timeout", "> 0"]),
    (["validate", "D", "--data", "x.npz", "--timeout", "-1"], ["--timeout", "> 0"]),
    (["emulate", "M", "-i", "x.npy", "--percentile", "200"], ["--percentile", "<= 49"]),
    (["run", "D", "--max-seconds", "nan"], ["--max-seconds", "finite"]),
    (["build", "D", "--jobs", "0"], ["--jobs", ">= 1"]),
    (["export", "M", "-b", "nucleo", "--finetune-epochs", "0"], ["--finetune-epochs", ">= 1"]),
    (["finetune", "M", "--data", "x.npz", "-b", "nucleo", "--seed", "-1"], ["--seed", ">= 0"]),
    (["export", "M", "-b", "nucleo", "--layer", "0=fgq:group=1000"], ["group must be 4..64"]),
    (["bench", "D", "--runs", "0"], ["--runs", ">= 1"]),
    (["bench", "D", "--warmup", "-1"], ["--warmup"]),
    (["export", "M"], ["--board"]),
])
def test_options_are_range_checked_where_parsed(args, words):
    assert_clean_error(*run(*[str(HELLO) if a == "M" else a for a in args]), *words)


def test_validate_refuses_data_without_samples(tmp_path):
    x = tmp_path / "empty.npz"
    np.savez(x, x=np.zeros((0, 1), np.int8))
    code, out, err = run("export", HELLO, "-b", "qemu_mps2_an386", "-o", tmp_path / "p", "--method", "int8")
    assert code == 0, err
    assert_clean_error(*run("validate", tmp_path / "p", "--data", x, "--port", "socket://127.0.0.1:9"),
                       "no samples")


def test_a_closed_pipe_ends_quietly():
    """`ternembed ... | head`: no 'internal error', no traceback, when the reader stops early."""
    # `true` exits long before ternembed has imported numpy, so the write meets a closed pipe.
    proc = subprocess.run(["bash", "-c", "set -o pipefail; \"$0\" -m ternembed inspect --json \"$1\" | true",
                           sys.executable, str(MODELS / "mlperf_vww/vww_96_int8.tflite")],
                          capture_output=True, text=True)
    assert proc.returncode == 141 and proc.stderr == "", proc.stderr
