------------------------------- MODULE Agent -------------------------------
(***************************************************************************)
(* Keel agent runs: the loop of model turns and tool calls.                *)
(*                                                                         *)
(* A run answers one user entry.  The loop asks the model for a turn; the  *)
(* turn and the tool calls it proposes are journaled in one atomic batch,  *)
(* and no call starts before that batch is durable (the turn is the WAL    *)
(* record of its calls).  The calls run, possibly in parallel; a call may  *)
(* first need a person's answer (waiting, journaled, survives restarts).   *)
(* Once every call of the turn has settled (an outcome no retry follows),  *)
(* the model is asked again.  A turn without calls is the answer: the run  *)
(* is done.  A run can also be cancelled (interruption), fail (a model     *)
(* error, turns or tokens exhausted) or time out (wall clock, a stalled    *)
(* model); it ends in exactly one of the four final states, and only once  *)
(* no call of it is pending.  At most one run of a session is active.      *)
(*                                                                         *)
(* Lifecycle of one run (design section 3), a fold of its records:         *)
(*   idle -> thinking                    StartRun                          *)
(*   thinking -> acting                  RecordTurn (turn n = turns + 1)   *)
(*   acting -> thinking                  SettleCall of the last pending    *)
(*   acting -> waiting -> acting         Wait / Answer (one pending call)  *)
(*   waiting -> thinking | acting        SettleCall of the awaited call    *)
(*   waiting -> waiting                  SettleCall of another call        *)
(*   acting -> done                      Finish (the turn had no call)     *)
(*   thinking | acting (nothing pending)                                   *)
(*       -> cancelled | failed | timedOut   Cancel, Fail, TimeOut          *)
(*                                                                         *)
(* The journal is one sequence for all runs, log \o buf: log is durable,   *)
(* buf is written but not yet fsynced (group commit, as in Session.tla).   *)
(* The loop acts on its own view, the fold of log \o buf; a crash loses    *)
(* buf, so after a restart the view is the fold of log.                    *)
(*                                                                         *)
(* Record shapes (each carries its run; one record is one batch):          *)
(*   [type |-> "started", run |-> r]          agent.run.started (with the  *)
(*                                             user entry)                 *)
(*   [type |-> "turn", run |-> r, turn |-> n, calls |-> k]                 *)
(*       agent.turn.recorded with the turn's entry and the k calls it      *)
(*       proposes (tool.call.proposed); the calls are CallId(r, n, 1..k)   *)
(*   [type |-> "waiting", run |-> r, call |-> c]    agent.run.waiting      *)
(*   [type |-> "answered", run |-> r, call |-> c]   agent.run.answered     *)
(*   [type |-> "settled", run |-> r, call |-> c]                           *)
(*       the tool-call record that gives c an outcome no retry follows     *)
(*       (succeeded, failed not retryable, cancelled, timedOut, or the     *)
(*       rejection); the session derives agent.call.settled from it        *)
(*   [type |-> s, run |-> r], s \in FinalStates                            *)
(*       agent.run.done / cancelled / failed / timedOut                    *)
(*                                                                         *)
(* The model in models/agent.ts transcribes this module action by action   *)
(* with the same names; spec/README.md maps both to the code.              *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS
    Runs,            \* the runs (model values)
    TurnsMax,        \* the turns budget of a run (RunBudget.turnsMax)
    MaxCallsPerTurn, \* bound on the calls one turn proposes (a bound of the model, not a budget)
    MaxCrashes       \* bound on the number of crashes

ASSUME /\ TurnsMax \in Nat /\ TurnsMax >= 1
       /\ MaxCallsPerTurn \in Nat
       /\ MaxCrashes \in Nat

\* A call is identified by its run, its turn and its position in the turn.
CallId(r, n, i) == <<r, n, i>>

Calls == {CallId(r, n, i) : r \in Runs, n \in 1..TurnsMax, i \in 1..MaxCallsPerTurn}

\* The calls turn n of run r proposes, when it proposes k.
CallsOf(r, n, k) == {CallId(r, n, i) : i \in 1..k}

RunOf(c)  == c[1]
TurnOf(c) == c[2]

\* No call (the value of awaiting outside waiting): the empty tuple, so that
\* it compares with calls (TLC refuses to compare a string with a tuple).
NoCall == << >>

RunStates   == {"idle", "thinking", "acting", "waiting", "done", "cancelled", "failed", "timedOut"}
FinalStates == {"done", "cancelled", "failed", "timedOut"}

-----------------------------------------------------------------------------
VARIABLES
    \* Seq(Records): the durable journal (fsynced); survives a crash.
    log,
    \* Seq(Records): records written after log but not durable yet (group
    \* commit); lost at a crash.
    buf,
    \* The calls whose effect has started (the ToolCall spec's Start: its
    \* started record is durable and the tool runs) and whose outcome is not
    \* durable yet: running in this process, or in doubt after a crash (a
    \* started effect is a fact of the world: a crash does not undo it).  A
    \* call leaves the set when its settled record becomes durable (Flush).
    open,
    \* The model requests in flight, [run |-> r, turn |-> n]: the loop asked
    \* the model for turn n of run r and has no answer yet.  Process memory:
    \* lost at a crash.
    asked,
    \* The runs whose wall-clock or token budget has run out.  Time passes
    \* crash or not (deadlines come from the journal): survives a crash.
    overBudget,
    \* The number of crashes so far (bounded by MaxCrashes).
    crashes,
    \* TRUE iff the process is up; FALSE between Crash and Restart.
    up

vars == <<log, buf, open, asked, overBudget, crashes, up>>

-----------------------------------------------------------------------------
(***************************************************************************)
(* Records.                                                                *)
(***************************************************************************)
StartedRecord(r)     == [type |-> "started", run |-> r]
TurnRecord(r, n, k)  == [type |-> "turn", run |-> r, turn |-> n, calls |-> k]
WaitingRecord(c)     == [type |-> "waiting", run |-> RunOf(c), call |-> c]
AnsweredRecord(c)    == [type |-> "answered", run |-> RunOf(c), call |-> c]
SettledRecord(c)     == [type |-> "settled", run |-> RunOf(c), call |-> c]
EndRecord(r, s)      == [type |-> s, run |-> r]

Records ==
    [type : {"started"}, run : Runs]
    \cup [type : {"turn"}, run : Runs, turn : 1..TurnsMax, calls : 0..MaxCallsPerTurn]
    \cup [type : {"waiting", "answered", "settled"}, run : Runs, call : Calls]
    \cup [type : FinalStates, run : Runs]

Requests == [run : Runs, turn : 1..TurnsMax]

(***************************************************************************)
(* The run fold: what the Agent machine computes from a run's records.     *)
(* A fold value is [status, turns, pending, lastCalls, awaiting]: the      *)
(* lifecycle state, the turns recorded, the calls of the last turn not     *)
(* settled yet, how many calls the last turn proposed, and the call a      *)
(* person is asked about.  A record the lifecycle does not allow gives     *)
(* Refused, which absorbs every later record.                              *)
(***************************************************************************)
InitFold == [status |-> "idle", turns |-> 0, pending |-> {}, lastCalls |-> 0, awaiting |-> NoCall]
Refused  == [InitFold EXCEPT !.status = "refused"]

\* One step of the fold (the machine's transition for one record of its run).
Step(st, x) ==
    CASE st.status = "refused" -> st
      [] x.type = "started" ->
            IF st.status = "idle" THEN [st EXCEPT !.status = "thinking"] ELSE Refused
      [] x.type = "turn" ->
            IF st.status = "thinking" /\ x.turn = st.turns + 1 /\ x.turn <= TurnsMax
            THEN [status |-> "acting", turns |-> x.turn, pending |-> CallsOf(x.run, x.turn, x.calls),
                  lastCalls |-> x.calls, awaiting |-> NoCall]
            ELSE Refused
      [] x.type = "settled" ->
            IF st.status \in {"acting", "waiting"} /\ x.call \in st.pending
            THEN LET p == st.pending \ {x.call}
                 IN  IF st.status = "waiting" /\ x.call # st.awaiting
                     THEN [st EXCEPT !.pending = p]
                     ELSE [st EXCEPT !.status = IF p = {} THEN "thinking" ELSE "acting",
                                     !.pending = p, !.awaiting = NoCall]
            ELSE Refused
      [] x.type = "waiting" ->
            IF st.status = "acting" /\ x.call \in st.pending
            THEN [st EXCEPT !.status = "waiting", !.awaiting = x.call]
            ELSE Refused
      [] x.type = "answered" ->
            IF st.status = "waiting" /\ x.call = st.awaiting
            THEN [st EXCEPT !.status = "acting", !.awaiting = NoCall]
            ELSE Refused
      [] x.type = "done" ->
            IF st.status = "acting" /\ st.pending = {} /\ st.lastCalls = 0
            THEN [st EXCEPT !.status = "done"]
            ELSE Refused
      [] x.type \in {"cancelled", "failed", "timedOut"} ->
            IF st.status = "thinking" \/ (st.status = "acting" /\ st.pending = {})
            THEN [st EXCEPT !.status = x.type]
            ELSE Refused
      [] OTHER -> Refused

\* The fold of run r's records in seq (records of other runs are skipped).
Fold(seq, r) ==
    LET f[i \in 0..Len(seq)] ==
            IF i = 0 THEN InitFold
            ELSE IF seq[i].run = r THEN Step(f[i - 1], seq[i]) ELSE f[i - 1]
    IN  f[Len(seq)]

\* Run r's lifecycle state in seq ("refused" if its records break the lifecycle).
RunStatus(seq, r) == Fold(seq, r).status

\* The loop's view of run r: the fold of everything written, durable or not.
Live(r) == Fold(log \o buf, r)

\* Run r has durably started / durably ended (what survives any crash).
Started(r) == RunStatus(log, r) # "idle"
Ended(r)   == RunStatus(log, r) \in FinalStates

\* Turn n of run r is durable: its record is in log.
TurnDurable(r, n) == \E i \in 1..Len(log) : log[i].type = "turn" /\ log[i].run = r /\ log[i].turn = n

\* The loop waits for the model's answer about run r.
InFlight(r) == \E q \in asked : q.run = r

\* Run r may end now other than by Finish: thinking, or acting with nothing pending.
CanEnd(r) == \/ Live(r).status = "thinking"
             \/ Live(r).status = "acting" /\ Live(r).pending = {}

\* Appends one batch (record) to the buffer.
Write(x) == buf' = Append(buf, x)

-----------------------------------------------------------------------------
(***************************************************************************)
(* Actions.                                                                *)
(***************************************************************************)
Init ==
    /\ log = << >>
    /\ buf = << >>
    /\ open = {}
    /\ asked = {}
    /\ overBudget = {}
    /\ crashes = 0
    /\ up = TRUE

\* agent.run(prompt): the user entry and its run, one batch, only while no
\* other run is active (every other run is idle or final).
StartRun(r) ==
    /\ up
    /\ Live(r).status = "idle"
    /\ \A q \in Runs \ {r} : Live(q).status \in {"idle"} \cup FinalStates
    /\ Write(StartedRecord(r))
    /\ UNCHANGED <<log, open, asked, overBudget, crashes, up>>

\* The loop asks the model for the next turn (turns + 1, from its view of
\* log \o buf, so never a turn already written), within the turns budget
\* and before the deadline.
AskModel(r) ==
    /\ up
    /\ Live(r).status = "thinking"
    /\ Live(r).turns < TurnsMax
    /\ r \notin overBudget
    /\ ~InFlight(r)
    /\ asked' = asked \cup {[run |-> r, turn |-> Live(r).turns + 1]}
    /\ UNCHANGED <<log, buf, open, overBudget, crashes, up>>

\* The model answers the request: its turn and the k calls it proposes are
\* written in one batch (none of them starts before the batch is durable).
RecordTurn(r, k) ==
    LET n == Live(r).turns + 1
    IN  /\ up
        /\ Live(r).status = "thinking"
        /\ n <= TurnsMax
        /\ r \notin overBudget
        /\ [run |-> r, turn |-> n] \in asked
        /\ Write(TurnRecord(r, n, k))
        /\ asked' = asked \ {[run |-> r, turn |-> n]}
        /\ UNCHANGED <<log, open, overBudget, crashes, up>>

\* A pending call starts (the executor; the ToolCall spec takes over): only
\* once its turn's record is durable, once, not while a person is asked
\* about it, and not after the deadline.
StartCall(c) ==
    LET r == RunOf(c)
    IN  /\ up
        /\ Live(r).status \in {"acting", "waiting"}
        /\ c \in Live(r).pending
        /\ c # Live(r).awaiting
        /\ c \notin open
        /\ r \notin overBudget
        /\ TurnDurable(r, TurnOf(c))
        /\ open' = open \cup {c}
        /\ UNCHANGED <<log, buf, asked, overBudget, crashes, up>>

\* A pending call reaches an outcome no retry follows: a running one ends
\* (ToolCall's outcomes), one in doubt after a crash is resolved by
\* recovery, one not started is rejected (unknown tool, bad input, a "no"
\* from a person, cancellation).  Derived: its record is the tool call's.
SettleCall(c) ==
    LET r == RunOf(c)
    IN  /\ up
        /\ Live(r).status \in {"acting", "waiting"}
        /\ c \in Live(r).pending
        /\ Write(SettledRecord(c))
        /\ UNCHANGED <<log, open, asked, overBudget, crashes, up>>

\* A person is asked about a pending call before it starts, once per call.
Wait(c) ==
    LET r == RunOf(c)
        J == log \o buf
    IN  /\ up
        /\ Live(r).status = "acting"
        /\ c \in Live(r).pending
        /\ c \notin open
        /\ r \notin overBudget
        /\ \A i \in 1..Len(J) : J[i] # WaitingRecord(c)
        /\ Write(WaitingRecord(c))
        /\ UNCHANGED <<log, open, asked, overBudget, crashes, up>>

\* The person answers.  The question is put only once its waiting record is
\* durable, so an answer never refers to a question a crash erased.
Answer(c) ==
    LET r == RunOf(c)
    IN  /\ up
        /\ Live(r).status = "waiting"
        /\ Live(r).awaiting = c
        /\ \E i \in 1..Len(log) : log[i] = WaitingRecord(c)
        /\ Write(AnsweredRecord(c))
        /\ UNCHANGED <<log, open, asked, overBudget, crashes, up>>

\* The last turn proposed no call: the model answered, the run is done.
Finish(r) ==
    /\ up
    /\ Live(r).status = "acting"
    /\ Live(r).pending = {}
    /\ Live(r).lastCalls = 0
    /\ Write(EndRecord(r, "done"))
    /\ UNCHANGED <<log, open, asked, overBudget, crashes, up>>

\* Ends run r in final state s; a model request in flight is abandoned.
End(r, s) ==
    /\ Write(EndRecord(r, s))
    /\ asked' = {q \in asked : q.run # r}
    /\ UNCHANGED <<log, open, overBudget, crashes, up>>

\* Interruption (Ctrl-C, AbortSignal).  The loop first settles every call
\* of the turn (SettleCall), so only thinking or nothing pending remains.
Cancel(r) ==
    /\ up
    /\ CanEnd(r)
    /\ End(r, "cancelled")

\* The model failed for good (a request in flight), the turns budget is
\* spent (thinking with TurnsMax turns), or the tokens are (overBudget).
Fail(r) ==
    /\ up
    /\ CanEnd(r)
    /\ \/ r \in overBudget
       \/ InFlight(r)
       \/ Live(r).status = "thinking" /\ Live(r).turns = TurnsMax
    /\ End(r, "failed")

\* The wall clock ran out (overBudget), or the model stalled (a request in
\* flight shows no progress: the watchdog).
TimeOut(r) ==
    /\ up
    /\ CanEnd(r)
    /\ r \in overBudget \/ InFlight(r)
    /\ End(r, "timedOut")

\* The budget of a durably started, unfinished run runs out: its deadline
\* passes or its tokens are spent.  Time passes while the process is down.
\* Afterwards the loop asks nothing, records no turn, asks no person and
\* starts no call: it settles the pending calls and ends the run.
Exhaust(r) ==
    /\ Started(r)
    /\ Live(r).status \notin FinalStates
    /\ r \notin overBudget
    /\ overBudget' = overBudget \cup {r}
    /\ UNCHANGED <<log, buf, open, asked, crashes, up>>

\* Group commit: the buffered records become durable; a call whose settled
\* record is among them is no longer open.
Flush ==
    /\ up
    /\ buf # << >>
    /\ log' = log \o buf
    /\ buf' = << >>
    /\ open' = {c \in open : \A i \in 1..Len(buf) : buf[i] # SettledRecord(c)}
    /\ UNCHANGED <<asked, overBudget, crashes, up>>

\* The process dies: the buffer and the model requests in flight are lost;
\* started calls are in doubt until recovery settles them.
Crash ==
    /\ up
    /\ crashes < MaxCrashes
    /\ up' = FALSE
    /\ buf' = << >>
    /\ asked' = {}
    /\ crashes' = crashes + 1
    /\ UNCHANGED <<log, open, overBudget>>

\* The process restarts: Session.openFile replays log, agent.resume goes on.
Restart ==
    /\ ~up
    /\ up' = TRUE
    /\ UNCHANGED <<log, buf, open, asked, overBudget, crashes>>

Next ==
    \/ \E r \in Runs : StartRun(r)
    \/ \E r \in Runs : AskModel(r)
    \/ \E r \in Runs, k \in 0..MaxCallsPerTurn : RecordTurn(r, k)
    \/ \E c \in Calls : StartCall(c)
    \/ \E c \in Calls : SettleCall(c)
    \/ \E c \in Calls : Wait(c)
    \/ \E c \in Calls : Answer(c)
    \/ \E r \in Runs : Finish(r)
    \/ \E r \in Runs : Cancel(r)
    \/ \E r \in Runs : Fail(r)
    \/ \E r \in Runs : TimeOut(r)
    \/ \E r \in Runs : Exhaust(r)
    \/ Flush
    \/ Crash
    \/ Restart

\* Weak fairness: records become durable; a crashed process restarts; time
\* passes (Exhaust); the loop asks the model and finishes an answered run;
\* the watchdog and the deadline end a run (TimeOut); every pending call
\* settles (ToolCall's OutcomeProp for a started call: every tool has a
\* timeout; the loop starts or rejects an unstarted one; a question that is
\* not answered in time is a rejection).  RecordTurn has none: the model may
\* never answer.
Fairness ==
    /\ WF_vars(Flush)
    /\ WF_vars(Restart)
    /\ \A r \in Runs :
          /\ WF_vars(Exhaust(r))
          /\ WF_vars(AskModel(r))
          /\ WF_vars(Finish(r))
          /\ WF_vars(TimeOut(r))
    /\ \A c \in Calls : WF_vars(SettleCall(c))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
(***************************************************************************)
(* Invariants.                                                             *)
(***************************************************************************)
TypeInv ==
    /\ log \in Seq(Records)
    /\ buf \in Seq(Records)
    /\ \A i \in 1..Len(log \o buf) :
          (log \o buf)[i].type \in {"waiting", "answered", "settled"} =>
              (log \o buf)[i].run = RunOf((log \o buf)[i].call)
    /\ open \subseteq Calls
    /\ asked \subseteq Requests
    /\ overBudget \subseteq Runs
    /\ crashes \in 0..MaxCrashes
    /\ up \in BOOLEAN
    \* Process memory is empty while the process is down.
    /\ ~up => (buf = << >> /\ asked = {})

\* Each run's records follow the lifecycle (the machine accepts the journal,
\* durable part and all): the fold is one of the eight states.
LifecycleInv ==
    \A r \in Runs : \A seq \in {log, log \o buf} : RunStatus(seq, r) \in RunStates

\* Each run has at most one terminal record, and no record of that run
\* follows it.
OneTerminalInv ==
    LET J == log \o buf
    IN  \A i \in 1..Len(J) :
           J[i].type \in FinalStates => \A j \in (i + 1)..Len(J) : J[j].run # J[i].run

\* The turn is the WAL record of its calls: a call starts only once the
\* record of the turn that proposes it is durable (checked in every state
\* where the call is open, the one right after StartCall included); an
\* open call has no durable outcome.
TurnWalInv ==
    \A c \in open :
        /\ \E i \in 1..Len(log) :
              /\ log[i].type = "turn"
              /\ log[i].run = RunOf(c)
              /\ log[i].turn = TurnOf(c)
              /\ c \in CallsOf(log[i].run, log[i].turn, log[i].calls)
        /\ \A i \in 1..Len(log) : log[i] # SettledRecord(c)

\* The model is never asked for a turn already written (durable or
\* buffered): a request is for the next turn of a thinking run, one at a
\* time per run.
NoReaskInv ==
    LET J == log \o buf
    IN  \A q \in asked :
           /\ \A i \in 1..Len(J) : ~(J[i].type = "turn" /\ J[i].run = q.run /\ J[i].turn = q.turn)
           /\ Live(q.run).status = "thinking"
           /\ q.turn = Live(q.run).turns + 1
           /\ \A q2 \in asked : q2.run = q.run => q2 = q

\* Budgets: a run records at most TurnsMax turns; only a durably started
\* run can run out of time or tokens.
BudgetInv ==
    LET J == log \o buf
    IN  /\ \A r \in Runs : Cardinality({i \in 1..Len(J) : J[i].type = "turn" /\ J[i].run = r}) <= TurnsMax
        /\ \A r \in overBudget : Started(r)

\* A run ends with no unsettled call: every call of every turn it recorded is
\* settled between the turn and the run's terminal record, in the durable
\* log as in the loop's view.
TerminalSettledInv ==
    \A seq \in {log, log \o buf} :
        \A i \in 1..Len(seq) :
            seq[i].type \in FinalStates =>
                \A j \in 1..(i - 1) :
                    (seq[j].type = "turn" /\ seq[j].run = seq[i].run) =>
                        \A c \in CallsOf(seq[j].run, seq[j].turn, seq[j].calls) :
                            \E m \in (j + 1)..(i - 1) : seq[m] = SettledRecord(c)

\* At most one run is active, and a run starts only when every run that
\* has a record before its start has ended before it.
SingleRunInv ==
    LET J == log \o buf
    IN  /\ Cardinality({r \in Runs : Live(r).status \notin {"idle"} \cup FinalStates}) <= 1
        /\ \A j \in 1..Len(J) :
              J[j].type = "started" =>
                  \A i \in 1..(j - 1) :
                      \E m \in 1..(j - 1) : J[m].run = J[i].run /\ J[m].type \in FinalStates

-----------------------------------------------------------------------------
(***************************************************************************)
(* Liveness (checked by TLC only; see spec/README.md for what the model    *)
(* test checks instead).                                                   *)
(***************************************************************************)
\* Every durably started run eventually ends durably in a final state.
Termination == \A r \in Runs : Started(r) ~> Ended(r)

=============================================================================
