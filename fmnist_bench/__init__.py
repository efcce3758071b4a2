"""``fmnist-bench``: figures measured on this machine, beside the library rather than inside it
(as Optuna keeps its ``benchmarks/``).

- ``cli``: the ``fmnist-bench`` command; ``run`` runs the parts asked for;
- ``options``: ``BenchOptions``, every flag of ``run`` with its default, typed;
- ``bench``: what every part sees (options, device, scratch folder) and a fresh study there;
- ``machine``: what a figure was measured on, and how busy the machine was;
- ``clock``: step time per epoch, images/s, interleaved repeats;
- ``trainer`` and ``pipeline2020``: our trainer and the 2020 report's pipeline, timed alike;
- ``optuna_recipe``: Optuna's published Lightning recipe for Fashion-MNIST, in our own code;
- ``parts``: one module per group of parts, each printing its tables and returning its figures;
- ``targets``: the figures judged against the issues' targets;
- ``scale`` and ``scale_worker``: ``fmnist-bench scale``, many simulated workers on real
  servers, and its torch-free worker; ``servers``: a private PostgreSQL and the storage proxy
  as processes a measurement or a drill starts, stops and restarts;
- ``claim_bench``: one process's claim-lock hold on a prefilled study (and the prefill).

The library (``fmnist``, ``spaces``, ``search``) never imports this package.
"""
