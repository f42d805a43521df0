"""The provenance record stored with every run and result: machine, threads, versions."""

import torch

import contrasting.encoders
from contrasting.encoders import provenance


def test_record_names_the_machine_threads_and_versions():
    record = provenance.environment()
    assert record["cpu"] and record["cpu"] != "unknown"
    assert int(record["cpu_count"]) >= 1
    assert record["contrasting-encoders"] == contrasting.encoders.__version__
    assert record["torch"] == torch.__version__.split("+")[0] or record["torch"] == torch.__version__
    assert all(isinstance(v, str) for v in record.values())
    assert len(record["git"]) == 40  # this checkout is a git repository


def test_thread_counts_are_read_at_each_call():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert provenance.environment()["torch_threads"] == "1"
        torch.set_num_threads(2)
        assert provenance.environment()["torch_threads"] == "2"
    finally:
        torch.set_num_threads(before)


def test_thread_variables_are_recorded_when_set(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert provenance.environment()["OMP_NUM_THREADS"] == "3"
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert "OMP_NUM_THREADS" not in provenance.environment()


def test_cuda_is_never_initialised_to_describe_it():
    provenance.environment()
    assert "gpu" not in provenance.environment() or torch.cuda.is_initialized()
