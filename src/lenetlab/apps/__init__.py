"""Applications: one module per ``lenet`` verb that orchestrates several packages (train, eval,
predict, ensemble, submit, compare, the benchmarks). ``lenetlab.cli`` parses arguments and calls
them; nothing below imports this package."""
