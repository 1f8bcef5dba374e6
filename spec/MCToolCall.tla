---------------------------- MODULE MCToolCall ----------------------------
(***************************************************************************)
(* Small constants for model checking ToolCall with TLC (MCToolCall.cfg).  *)
(* models/toolCall.ts exports the same constants as MC, and                *)
(* test/models/toolCall.model.test.ts explores the model for them; the     *)
(* distinct-state count it asserts is recorded in spec/README.md.          *)
(*                                                                         *)
(* Three calls, one per way a call in doubt is resolved:                   *)
(*   c1 unsafe, no reconcile      -> CloseUnknown                          *)
(*   c2 idempotent                -> Retry, Rerun (CloseUnknown once out   *)
(*                                   of attempts)                          *)
(*   c3 compensatable, reconcile  -> Reconcile, Compensate                 *)
(* Two crashes, so that a crash can also hit a recovery in progress (a     *)
(* rerun attempt can itself end in doubt).                                 *)
(***************************************************************************)
EXTENDS ToolCall

\* Model values for the calls (declared in MCToolCall.cfg as c1 = c1, ...).
CONSTANTS c1, c2, c3

MCCalls              == {c1, c2, c3}
MCReadOnlyCalls      == {}
MCIdempotentCalls    == {c2}
MCCompensatableCalls == {c3}
MCUnsafeCalls        == {c1}
MCHasReconcile       == {c3}
MCMaxAttempts        == 2
MCMaxCrashes         == 2

=============================================================================
