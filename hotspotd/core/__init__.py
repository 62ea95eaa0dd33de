"""The domain: plans, vouchers, sessions, quotas, usage. No I/O beyond the database session."""
