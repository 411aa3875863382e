"""treadle's benchmark suite: workloads measured on treadle and on its peers, side by side in one run.

    bench/run all              # every workload, full sizes (about 15 minutes on 2 cores)
    bench/run chain200         # one workload
    bench/run all --smoke      # tiny sizes, no targets asserted (what CI runs)
    bench/run peers-setup      # Snakemake and Prefect into bench/.venv-peers

See bench/README.md.
"""
