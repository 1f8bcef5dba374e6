----------------------------- MODULE MCSession -----------------------------
(***************************************************************************)
(* Small constants for model checking Session with TLC (MCSession.cfg).    *)
(* models/session.ts exports the same constants as MC, and                 *)
(* test/models/session.model.test.ts explores the model for them; the      *)
(* distinct-state count it asserts is recorded in spec/README.md.          *)
(***************************************************************************)
EXTENDS Session

\* Model values for the writers (declared in MCSession.cfg as w1 = w1, w2 = w2).
CONSTANTS w1, w2

MCWriters    == {w1, w2}
MCBranches   == {"main", "b1"}
MCMaxRecords == 4
MCMaxEpoch   == 2

=============================================================================
