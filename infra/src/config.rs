//! Configuration read from the environment (every value has a default for one machine).
