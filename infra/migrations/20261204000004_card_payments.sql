-- Cards the bank simulator bound for later payments (card-on-file tokens). The bank keeps
-- no card number here: the token is derived from it, the masked number is kept for display
-- and for the simulator's answers by last four digits.
CREATE TABLE simulator_bank_cards (
    token      text PRIMARY KEY,
    masked_pan text NOT NULL,
    bound_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
