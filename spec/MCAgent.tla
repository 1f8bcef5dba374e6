------------------------------ MODULE MCAgent ------------------------------
(***************************************************************************)
(* Small constants for model checking Agent with TLC (MCAgent.cfg).        *)
(* models/agent.ts exports the same constants as MC, and                   *)
(* test/models/agent.model.test.ts explores the model for them; the        *)
(* distinct-state count it asserts is recorded in spec/README.md.          *)
(*                                                                         *)
(* One run, two turns, up to two calls per turn, one crash: a run goes     *)
(* thinking -> acting -> thinking -> acting and can spend its turns; the   *)
(* calls of a turn settle in either order, one can be waited on while the  *)
(* other runs or settles; the crash can hit any of these (a buffered turn, *)
(* a call in flight, a durable question, a buffered end).                  *)
(*                                                                         *)
(* Two runs multiply the space by the first run's histories (half a        *)
(* million states with two turns of one call). The model test checks       *)
(* SingleRunInv and the cross-run part of OneTerminalInv exhaustively with *)
(*                                                                         *)
(*   MCRuns == {r1, r2}, MCTurnsMax == 1,                                  *)
(*   MCMaxCallsPerTurn == 1, MCMaxCrashes == 1                             *)
(*                                                                         *)
(* (for TLC: CONSTANTS r1, r2 below and r2 = r2 in MCAgent.cfg);           *)
(* spec/README.md records its counts too.                                  *)
(***************************************************************************)
EXTENDS Agent

\* Model values for the runs (declared in MCAgent.cfg as r1 = r1).
CONSTANTS r1

MCRuns            == {r1}
MCTurnsMax        == 2
MCMaxCallsPerTurn == 2
MCMaxCrashes      == 1

=============================================================================
