"""What operators and their monitoring see of the fleet: Prometheus metrics (the per-host
textfile a pass writes, and `serve`'s `/metrics`), VacMon messages, and the status page.

Everything here reads the shared state directory and renders it; nothing here decides
anything. It sits below `feedback` (so `serve` can show the page and `/metrics`) and above
`policy` (so the page and the metrics can show the budget); see docs/metrics.md.
"""
