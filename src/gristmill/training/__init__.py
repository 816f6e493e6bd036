"""Training: split a feature set, fit candidates on an executor, tune them, record them."""
