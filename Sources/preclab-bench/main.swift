// Benchmarks: `make bench`. Each area adds a file with a `run...Benchmarks()` function.
print("preclab-bench: no benchmarks yet")
