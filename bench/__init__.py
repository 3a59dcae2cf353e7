import os

# One BLAS thread per process: benchmarks run one process per core, and their models are small
# (on a busy 2-core machine a multi-threaded BLAS spins and runs several times slower).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
