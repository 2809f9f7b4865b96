"""The routing simulator: the real router (planner, scoring, exploration, dispatcher with
its retries, health board, metrics store with its flush and refresh) driven in virtual
time against scripted in-process deployments, so a scenario of thousands of requests
runs in a fraction of a second and the same scenario gives the same report every run.

- `scenario.py`: what a scenario file holds (phases of latency, errors, prices, load).
- `virtual_time.py`: an event loop whose clock jumps to the next timer when idle.
- `deployment.py`: a provider that answers as the current phase scripts it.
- `shared_store.py`: replicas sharing one store, as they share Redis.
- `runner.py`: runs a scenario and keeps a trace of every request and try.
- `report.py`: per phase, what a routing policy is judged on.
"""
