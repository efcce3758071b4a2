"""A failed accelerator, told apart from a failed trial. Out-of-memory is the trial's (its
config asked too much); an illegal address, an ECC error or a launch failure is the device's:
the process's CUDA context is unusable after one, so the trial is failed as infrastructure,
queued for a retry elsewhere, and the worker exits with ``EXIT_CODE`` for its launcher (or
Ray) to replace it with a fresh process."""

from __future__ import annotations

from search.errors import SearchError

EXIT_CODE = 3  # distinct from a user error's 2 and a crash's 1
INFRASTRUCTURE = "infrastructure"  # the trial's ``failure`` user attr

# Substrings of the messages CUDA errors other than out-of-memory carry (RuntimeError, or
# torch.AcceleratorError from torch 2.8 on).
SIGNS = (
    "CUDA error",
    "illegal memory access",
    "illegal address",
    "unspecified launch failure",
    "ECC",
    "device-side assert",
    "misaligned address",
    "CUBLAS_STATUS_EXECUTION_FAILED",
    "CUDNN_STATUS_EXECUTION_FAILED",
)


class DeviceFault(SearchError):
    """The accelerator failed under a trial; this worker must not run another."""

    exit_code = EXIT_CODE


def is_device_fault(error: BaseException) -> bool:
    """Whether ``error`` (or what it was raised from) is a CUDA failure other than OOM."""
    while error is not None:
        text = str(error)
        oom = "out of memory" in text or type(error).__name__ == "OutOfMemoryError"
        if isinstance(error, RuntimeError) and not oom and any(s in text for s in SIGNS):
            return True
        error = error.__cause__ or error.__context__
    return False
