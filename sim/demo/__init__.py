"""`ppsbot demo`: the product started as processes beside the stand-ins, on one machine.

- `config`: writes the demo directory (firmware packages, inventory, simulator config, env).
- `stack`: starts and stops the processes (simulator, Slack stand-in and page, worker, bot).
- `main`: the command itself.

Like the rest of `sim`, it imports nothing of the product: it runs `ppsbot` as processes.
"""

__all__: list[str] = []  # run it as `ppsbot demo`; the modules above are its parts
