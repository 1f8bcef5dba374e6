------------------------------ MODULE ToolCall ------------------------------
(***************************************************************************)
(* Keel tool calls as transactions.                                        *)
(*                                                                         *)
(* A tool call is proposed by the model, started, and closed by exactly    *)
(* one outcome per attempt.  Its effect reaches the external world, which  *)
(* counts executions per idempotency key.  The journal is a write-ahead    *)
(* log: the effect of an attempt may run only once the attempt's started   *)
(* record is durable, and a crash loses what the process had in flight     *)
(* but never the journal.  After a crash a call whose latest record is     *)
(* started has no known outcome: it is in doubt, and recovery resolves it  *)
(* according to the tool's semantics, never by re-running an effect that   *)
(* must not run twice.                                                     *)
(*                                                                         *)
(* Lifecycle of one call (design section 3):                               *)
(*   proposed -> started -> succeeded | failed | cancelled | timedOut      *)
(*   proposed -> failed (attempt 0, "rejected", not retryable: Reject; the *)
(*       call never starts and nothing runs);                              *)
(*   failed (retryable; readOnly or idempotent; attempts left) -> started  *)
(*       with the same idempotency key and attempt + 1 (Retry);            *)
(*   succeeded -> compensated (saga undo; compensatable tools only);       *)
(*   started, then a crash -> inDoubt, resolved by                         *)
(*       Rerun        (readOnly/idempotent, attempts left: the lost        *)
(*                     attempt is closed as failed "unknown" and the next  *)
(*                     one starts, same key),                              *)
(*       Reconcile    (the tool offers reconcile(key): succeeded if the    *)
(*                     world has the effect, else failed "error"),         *)
(*       CloseUnknown (otherwise: failed "unknown", the model sees an      *)
(*                     explicit "outcome unknown" error).                  *)
(* Start is the only action that moves a call from proposed to started:    *)
(* authorization (issue 5) will sit between the two, and a denial will     *)
(* take the path of Reject (invalid input, unknown tool).                  *)
(*                                                                         *)
(* The journal is kept per call: log[c] is the sequence of c's records.    *)
(* The implementation has one journal per session; log[c] is its           *)
(* projection on call c.  No property here relates two calls, so the       *)
(* interleaving of different calls' records is abstracted away (it would   *)
(* multiply the state space without adding a behaviour).                   *)
(*                                                                         *)
(* Record shapes (all carry a "type" field; the attempts of a call are     *)
(* numbered 1, 2, ...; attempt 0 is the rejection, which has no attempt):  *)
(*   [type |-> "proposed", key |-> k]                                      *)
(*   [type |-> "started", attempt |-> a, key |-> k]   (the WAL record)     *)
(*   [type |-> "succeeded", attempt |-> a]                                 *)
(*   [type |-> "failed", attempt |-> a, retryable |-> b, reason |-> r]     *)
(*       r = "error": the tool (or reconcile) reported a failure;          *)
(*       r = "unknown": nobody knows whether the effect happened;          *)
(*       r = "rejected": only with attempt 0 and b = FALSE (Reject).       *)
(*   [type |-> "cancelled", attempt |-> a]                                 *)
(*   [type |-> "timedOut", attempt |-> a]                                  *)
(*   [type |-> "compensated", attempt |-> a]   (undoes success a)          *)
(*                                                                         *)
(* The model in models/toolCall.ts transcribes this module action by       *)
(* action with the same names; spec/README.md maps both to the code.       *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS
    Calls,              \* the tool calls (model values)
    ReadOnlyCalls,      \* calls of read-only tools: the effect changes nothing
    IdempotentCalls,    \* calls of idempotent tools: the effect may run again under the same key
    CompensatableCalls, \* calls of tools with an undo (saga): never re-run blindly, may be compensated
    UnsafeCalls,        \* calls of tools whose effect must never run twice
    HasReconcile,       \* the calls whose tool offers reconcile(key): it asks the world whether the effect happened
    MaxAttempts,        \* attempts per call, the first included; Retry and Rerun share the budget
    MaxCrashes          \* bound on the number of crashes

\* The four semantics sets partition Calls; only compensatable and unsafe
\* tools reconcile (readOnly and idempotent ones are simply re-run).
ASSUME /\ ReadOnlyCalls \cup IdempotentCalls \cup CompensatableCalls \cup UnsafeCalls = Calls
       /\ Cardinality(ReadOnlyCalls) + Cardinality(IdempotentCalls)
            + Cardinality(CompensatableCalls) + Cardinality(UnsafeCalls) = Cardinality(Calls)
       /\ HasReconcile \subseteq CompensatableCalls \cup UnsafeCalls
       /\ MaxAttempts \in Nat /\ MaxAttempts >= 1
       /\ MaxCrashes \in Nat

\* The semantics of each call's tool (design section 5).
Semantics ==
    [c \in Calls |->
        CASE c \in ReadOnlyCalls      -> "readOnly"
          [] c \in IdempotentCalls    -> "idempotent"
          [] c \in CompensatableCalls -> "compensatable"
          [] OTHER                    -> "unsafe"]

\* The calls whose effect may run again under the same key.
Rerunnable == {c \in Calls : Semantics[c] \in {"readOnly", "idempotent"}}

\* The idempotency key: a deterministic function of the call (session and
\* call id in the implementation), the same for every attempt.
KeyOf(c) == <<"key", c>>

Keys == {KeyOf(c) : c \in Calls}

-----------------------------------------------------------------------------
VARIABLES
    \* [Calls -> Seq(Records)]: the durable journal, per call.  A record is
    \* durable once appended (group commit is Session.tla's concern), so
    \* everything here survives a crash and is what recovery replays.
    log,
    \* The calls whose current attempt is in flight in this process: started
    \* and not yet closed.  Process memory: lost at a crash.
    running,
    \* [Keys -> Nat]: the external world, how many times the effect ran
    \* under each idempotency key.  Survives crashes; never decreases (a
    \* compensation is a new effect, not an erasure of the old one).
    executed,
    \* The running calls whose current attempt's effect has happened (the
    \* tool has done its work but its outcome is not journaled yet).
    \* Process memory: lost at a crash.
    effected,
    \* The number of crashes so far (bounded by MaxCrashes).
    crashes,
    \* TRUE iff the process is up; FALSE between Crash and Recover.
    up

vars == <<log, running, executed, effected, crashes, up>>

-----------------------------------------------------------------------------
(***************************************************************************)
(* Records.                                                                *)
(***************************************************************************)
Attempts    == 1..MaxAttempts
FailReasons == {"error", "unknown", "rejected"}

\* The record types that close an attempt.
OutcomeTypes == {"succeeded", "failed", "cancelled", "timedOut"}

ProposedRecord(c)          == [type |-> "proposed", key |-> KeyOf(c)]
StartedRecord(c, a)        == [type |-> "started", attempt |-> a, key |-> KeyOf(c)]
SucceededRecord(a)         == [type |-> "succeeded", attempt |-> a]
FailedRecord(a, rt, rs)    == [type |-> "failed", attempt |-> a, retryable |-> rt, reason |-> rs]
CancelledRecord(a)         == [type |-> "cancelled", attempt |-> a]
TimedOutRecord(a)          == [type |-> "timedOut", attempt |-> a]
CompensatedRecord(a)       == [type |-> "compensated", attempt |-> a]

\* The outcome of a call closed before any attempt (Reject): attempt 0, final.
RejectedRecord             == FailedRecord(0, FALSE, "rejected")

\* Attempt 0 and reason "rejected" occur in the rejection record only.
Records ==
    [type : {"proposed"}, key : Keys]
    \cup [type : {"started"}, attempt : Attempts, key : Keys]
    \cup [type : {"succeeded", "cancelled", "timedOut", "compensated"}, attempt : Attempts]
    \cup [type : {"failed"}, attempt : Attempts, retryable : BOOLEAN, reason : FailReasons \ {"rejected"}]
    \cup {RejectedRecord}

\* What a call has before its first record.
NoRecord == [type |-> "none"]

(***************************************************************************)
(* Derived state: folds of a call's records (the live state of a call is   *)
(* a fold of its journal; it is never stored twice).                       *)
(***************************************************************************)

\* The last record of a sequence, or NoRecord.
Last(seq) == IF seq = << >> THEN NoRecord ELSE seq[Len(seq)]

IsStarted(r) == r.type = "started"

\* The started records of a sequence, in order.
Starts(seq) == SelectSeq(seq, IsStarted)

\* The attempt of c's last started record (0 before the first).
Attempt(c) == LET st == Starts(log[c]) IN IF st = << >> THEN 0 ELSE st[Len(st)].attempt

\* Some outcome record of seq closes attempt a.
HasOutcome(seq, a) == \E i \in 1..Len(seq) : seq[i].type \in OutcomeTypes /\ seq[i].attempt = a

\* The lifecycle state of call c: the type of its latest record ("absent"
\* before the first), except that a call whose latest record is started but
\* which does not run in this process is "inDoubt": only a crash takes a
\* started call out of running without an outcome.
CallState(c) ==
    LET r == Last(log[c])
    IN  CASE r.type = "none"    -> "absent"
          [] r.type = "started" -> IF c \in running THEN "started" ELSE "inDoubt"
          [] OTHER              -> r.type

\* c has a started attempt without an outcome.
Open(c) == CallState(c) \in {"started", "inDoubt"}

\* Record r is a step of the lifecycle from its call's previous record prev
\* (NoRecord for the first): what the ToolCall machine accepts.
CanFollow(prev, r) ==
    CASE r.type = "proposed" ->
            prev.type = "none"
      [] r.type = "started" ->
            \/ /\ prev.type = "proposed"
               /\ r.attempt = 1
            \/ /\ prev.type = "failed"
               /\ prev.retryable
               /\ r.attempt = prev.attempt + 1
      [] r.type \in OutcomeTypes ->
            \/ /\ prev.type = "started"
               /\ r.attempt = prev.attempt
            \/ /\ prev.type = "proposed"
               /\ r = RejectedRecord
      [] r.type = "compensated" ->
            /\ prev.type = "succeeded"
            /\ r.attempt = prev.attempt

\* The process is up, nothing runs, and no call is in doubt: what recovery
\* establishes before the next model turn.
Settled == /\ up
           /\ running = {}
           /\ \A c \in Calls : CallState(c) # "inDoubt"

\* Appends records to c's journal.
Journal(c, recs) == log' = [log EXCEPT ![c] = @ \o recs]

-----------------------------------------------------------------------------
(***************************************************************************)
(* Actions.                                                                *)
(***************************************************************************)
Init ==
    /\ log = [c \in Calls |-> << >>]
    /\ running = {}
    /\ executed = [k \in Keys |-> 0]
    /\ effected = {}
    /\ crashes = 0
    /\ up = TRUE

\* The model asks for call c; its key is fixed now, for every attempt.
Propose(c) ==
    /\ up
    /\ CallState(c) = "absent"
    /\ Journal(c, << ProposedRecord(c) >>)
    /\ UNCHANGED <<running, executed, effected, crashes, up>>

\* The WAL step: the started record of attempt 1 is durable, then c runs.
\* The only way from proposed to started (authorization will guard it).
Start(c) ==
    /\ up
    /\ CallState(c) = "proposed"
    /\ Journal(c, << StartedRecord(c, 1) >>)
    /\ running' = running \cup {c}
    /\ UNCHANGED <<executed, effected, crashes, up>>

\* The call is closed before it starts: its input fails the tool's Schema,
\* or its tool is unknown (authorization's denial will take this path).
\* Nothing runs; the rejection is final (not retryable).
Reject(c) ==
    /\ up
    /\ CallState(c) = "proposed"
    /\ Journal(c, << RejectedRecord >>)
    /\ UNCHANGED <<running, executed, effected, crashes, up>>

\* The effect of c's current attempt happens in the world, once per attempt,
\* and only while the attempt runs and its started record is durable.
Execute(c) ==
    /\ up
    /\ c \in running
    /\ c \notin effected
    /\ Last(log[c]).type = "started"
    /\ executed' = [executed EXCEPT ![KeyOf(c)] = @ + 1]
    /\ effected' = effected \cup {c}
    /\ UNCHANGED <<log, running, crashes, up>>

\* Journals outcome r of c's current attempt; c stops running.
CloseAttempt(c, r) ==
    /\ Journal(c, << r >>)
    /\ running' = running \ {c}
    /\ effected' = effected \ {c}
    /\ UNCHANGED <<executed, crashes, up>>

\* The tool returns its output: only after its effect happened.
Succeed(c) ==
    /\ up
    /\ c \in running
    /\ c \in effected
    /\ CloseAttempt(c, SucceededRecord(Attempt(c)))

\* The tool fails, before or after its effect happened.  Whether the error
\* is retryable is the error's property; whether a retry is allowed is the
\* tool's.  The record says retryable only when both hold, so a failure
\* journaled retryable is a promise that another attempt follows (Retry),
\* and one journaled not retryable is the call's end.
Fail(c, retryable) ==
    /\ up
    /\ c \in running
    /\ CloseAttempt(c, FailedRecord(Attempt(c), retryable /\ c \in Rerunnable /\ Attempt(c) < MaxAttempts, "error"))

\* The attempt exceeds its time budget; the effect may have happened
\* already (the race is journaled as one outcome all the same).
TimeOut(c) ==
    /\ up
    /\ c \in running
    /\ CloseAttempt(c, TimedOutRecord(Attempt(c)))

\* The attempt is interrupted (Effect interruption), before or after its
\* effect happened.
Cancel(c) ==
    /\ up
    /\ c \in running
    /\ CloseAttempt(c, CancelledRecord(Attempt(c)))

\* A retryable failure of a readOnly or idempotent tool is retried with the
\* same key and the next attempt, while attempts are left.
Retry(c) ==
    LET r == Last(log[c])
    IN  /\ up
        /\ r.type = "failed"
        /\ r.retryable
        /\ c \in Rerunnable
        /\ r.attempt < MaxAttempts
        /\ Journal(c, << StartedRecord(c, r.attempt + 1) >>)
        /\ running' = running \cup {c}
        /\ UNCHANGED <<executed, effected, crashes, up>>

\* The saga undoes a success of a compensatable tool.  The compensation's
\* own effect is not modelled: only its record.
Compensate(c) ==
    LET r == Last(log[c])
    IN  /\ up
        /\ r.type = "succeeded"
        /\ Semantics[c] = "compensatable"
        /\ Journal(c, << CompensatedRecord(r.attempt) >>)
        /\ UNCHANGED <<running, executed, effected, crashes, up>>

\* The process dies: what it had in flight is lost, the journal and the
\* world are not.
Crash ==
    /\ up
    /\ crashes < MaxCrashes
    /\ up' = FALSE
    /\ running' = {}
    /\ effected' = {}
    /\ crashes' = crashes + 1
    /\ UNCHANGED <<log, executed>>

\* The process restarts and replays the journal.  Resolving the calls in
\* doubt is done by Rerun, Reconcile and CloseUnknown, enabled while up.
Recover ==
    /\ ~up
    /\ up' = TRUE
    /\ UNCHANGED <<log, running, executed, effected, crashes>>

\* An in-doubt readOnly or idempotent call is run again with the same key:
\* the lost attempt is closed as failed "unknown" (retryable) and the next
\* attempt starts, in one batch.  Its effect may run again: allowed for it.
Rerun(c) ==
    /\ up
    /\ CallState(c) = "inDoubt"
    /\ c \in Rerunnable
    /\ Attempt(c) < MaxAttempts
    /\ Journal(c, << FailedRecord(Attempt(c), TRUE, "unknown"), StartedRecord(c, Attempt(c) + 1) >>)
    /\ running' = running \cup {c}
    /\ UNCHANGED <<executed, effected, crashes, up>>

\* An in-doubt call whose tool offers reconcile(key) asks the world: the
\* outcome is succeeded if the effect happened under its key, else failed.
Reconcile(c) ==
    /\ up
    /\ CallState(c) = "inDoubt"
    /\ c \in HasReconcile
    /\ Journal(c, << IF executed[KeyOf(c)] > 0
                     THEN SucceededRecord(Attempt(c))
                     ELSE FailedRecord(Attempt(c), FALSE, "error") >>)
    /\ UNCHANGED <<running, executed, effected, crashes, up>>

\* Any other in-doubt call (compensatable or unsafe without reconcile, or
\* out of attempts) is closed as failed "unknown": never re-run blindly.
CloseUnknown(c) ==
    /\ up
    /\ CallState(c) = "inDoubt"
    /\ c \notin HasReconcile
    /\ c \in Rerunnable => Attempt(c) >= MaxAttempts
    /\ Journal(c, << FailedRecord(Attempt(c), FALSE, "unknown") >>)
    /\ UNCHANGED <<running, executed, effected, crashes, up>>

Next ==
    \/ \E c \in Calls : Propose(c)
    \/ \E c \in Calls : Start(c)
    \/ \E c \in Calls : Reject(c)
    \/ \E c \in Calls : Execute(c)
    \/ \E c \in Calls : Succeed(c)
    \/ \E c \in Calls, r \in BOOLEAN : Fail(c, r)
    \/ \E c \in Calls : TimeOut(c)
    \/ \E c \in Calls : Cancel(c)
    \/ \E c \in Calls : Retry(c)
    \/ \E c \in Calls : Compensate(c)
    \/ Crash
    \/ Recover
    \/ \E c \in Calls : Rerun(c)
    \/ \E c \in Calls : Reconcile(c)
    \/ \E c \in Calls : CloseUnknown(c)

\* Weak fairness: a crashed process is restarted; every attempt ends (every
\* tool has a timeout: TimeOut is the outcome the runtime can guarantee,
\* Succeed and Fail are the tool's); recovery resolves every call in doubt.
\* Propose, Start and Reject have none: a proposed call may stay proposed
\* (OutcomeProp is about started calls).
Fairness ==
    /\ WF_vars(Recover)
    /\ \A c \in Calls :
          /\ WF_vars(TimeOut(c))
          /\ WF_vars(Rerun(c))
          /\ WF_vars(Reconcile(c))
          /\ WF_vars(CloseUnknown(c))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
(***************************************************************************)
(* Invariants.                                                             *)
(***************************************************************************)
TypeInv ==
    /\ log \in [Calls -> Seq(Records)]
    /\ running \subseteq Calls
    /\ executed \in [Keys -> Nat]
    /\ effected \subseteq Calls
    /\ crashes \in 0..MaxCrashes
    /\ up \in BOOLEAN

\* WAL: every execution of c's effect is covered by its own durable started
\* record (at most one execution per attempt, so no execution without a
\* started); a running call's latest record is its started; an effect
\* happens only in a running attempt; nothing runs while down.
WalInv ==
    /\ \A c \in Calls : executed[KeyOf(c)] <= Len(Starts(log[c]))
    /\ \A c \in running : Last(log[c]).type = "started"
    /\ effected \subseteq running
    /\ ~up => running = {}

\* Pairing: at most one outcome per (call, attempt); every outcome follows
\* the started record of its attempt, except a rejection (attempt 0), which
\* directly follows the proposal; an attempt without an outcome is the
\* call's latest record (so it is running or in doubt); and once settled
\* (up, nothing running, nothing in doubt), every started has its outcome.
PairingInv ==
    \A c \in Calls :
        LET s == log[c]
        IN  /\ \A i, j \in 1..Len(s) :
                  (i # j /\ s[i].type \in OutcomeTypes /\ s[j].type \in OutcomeTypes)
                      => s[i].attempt # s[j].attempt
            /\ \A i \in 1..Len(s) :
                  s[i].type \in OutcomeTypes =>
                      \/ \E j \in 1..(i - 1) : s[j].type = "started" /\ s[j].attempt = s[i].attempt
                      \/ /\ s[i].attempt = 0
                         /\ i > 1
                         /\ s[i - 1].type = "proposed"
            /\ \A i \in 1..Len(s) :
                  (s[i].type = "started" /\ ~HasOutcome(s, s[i].attempt)) => i = Len(s)
            /\ Settled =>
                  \A i \in 1..Len(s) : s[i].type = "started" => HasOutcome(s, s[i].attempt)

\* At-most-once: the effect of a compensatable or unsafe tool runs at most
\* once per key, and such a call is never started twice; a readOnly or
\* idempotent one runs at most MaxAttempts times (effectively once).
AtMostOnceInv ==
    \A c \in Calls :
        IF c \in Rerunnable
        THEN executed[KeyOf(c)] <= MaxAttempts
        ELSE /\ executed[KeyOf(c)] <= 1
             /\ Len(Starts(log[c])) <= 1

\* Keys: distinct calls have distinct keys; every proposed and started
\* record of c carries KeyOf(c); c's started records are attempts 1, 2, ...
\* in order.
KeyStableInv ==
    /\ \A c, d \in Calls : KeyOf(c) = KeyOf(d) => c = d
    /\ \A c \in Calls :
          /\ \A i \in 1..Len(log[c]) :
                log[c][i].type \in {"proposed", "started"} => log[c][i].key = KeyOf(c)
          /\ \A n \in 1..Len(Starts(log[c])) : Starts(log[c])[n].attempt = n

\* Lifecycle: each call's records follow the lifecycle, each one a step
\* from the one before it.
LifecycleInv ==
    \A c \in Calls :
        \A i \in 1..Len(log[c]) :
            CanFollow(IF i = 1 THEN NoRecord ELSE log[c][i - 1], log[c][i])

\* Compensation: only a compensatable call is compensated, at most once,
\* and only a success of the same attempt that precedes it.
CompensationInv ==
    \A c \in Calls :
        \A i \in 1..Len(log[c]) :
            log[c][i].type = "compensated" =>
                /\ Semantics[c] = "compensatable"
                /\ \E j \in 1..(i - 1) :
                      log[c][j].type = "succeeded" /\ log[c][j].attempt = log[c][i].attempt
                /\ \A j \in 1..Len(log[c]) : log[c][j].type = "compensated" => j = i

\* Outcomes are truthful: a succeeded record (from the tool, or from
\* Reconcile reading the world) means the effect ran under c's key.
OutcomeInv ==
    \A c \in Calls :
        \A i \in 1..Len(log[c]) :
            log[c][i].type = "succeeded" => executed[KeyOf(c)] > 0

-----------------------------------------------------------------------------
(***************************************************************************)
(* Liveness (checked by TLC only; see spec/README.md).                     *)
(***************************************************************************)
\* Every started call eventually has an outcome (a rerun is still open:
\* its new attempt must end too).
OutcomeProp == \A c \in Calls : Open(c) ~> ~Open(c)

=============================================================================
