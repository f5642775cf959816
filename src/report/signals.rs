//! Signal and si_code names.
