//! Transaction pool: pending by effective tip, queued nonce gaps, replacement, bounds.
