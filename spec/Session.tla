------------------------------ MODULE Session ------------------------------
(***************************************************************************)
(* The Keel session journal.                                               *)
(*                                                                         *)
(* A session is an append-only tree of entries kept in one journal.  The  *)
(* journal is abstracted at batch granularity: one record is one committed *)
(* batch.  Records carry the epoch of the lease under which they were      *)
(* written, so that a writer whose lease was taken over is refused instead *)
(* of silently interleaving its writes with the new holder's (single       *)
(* writer, fencing).  A record is acknowledged to its caller only once it  *)
(* is durable (group commit: Flush), and a crash keeps some prefix of the  *)
(* unflushed records, possibly followed by a torn partial record that      *)
(* recovery cuts off (prefix recovery).                                    *)
(*                                                                         *)
(* Record shapes (all carry a "type" field):                               *)
(*   [type |-> "lease",  epoch |-> e]                                      *)
(*   [type |-> "entry",  id |-> i, parent |-> p, branch |-> b, epoch |-> e]*)
(*       id is the record's 1-based position in log \o buf; parent is the  *)
(*       head of branch b when the entry was appended (0 = root).          *)
(*       Appending moves b's head to id.                                   *)
(*   [type |-> "fork",   branch |-> b, at |-> i, epoch |-> e]              *)
(*       creates branch b, whose head is entry i (or 0); no history is     *)
(*       copied, so a fork is O(1).                                        *)
(*   [type |-> "switch", branch |-> b, epoch |-> e]                        *)
(*       the active branch becomes b.                                      *)
(*   [type |-> "suspend", epoch |-> e]                                     *)
(*       the holder suspends the session and lets go of its lease.         *)
(*   [type |-> "close",   epoch |-> e]                                     *)
(*       the holder closes the session for good and lets go of its lease.  *)
(*                                                                         *)
(* Lifecycle: the session's status is a fold of its records (Status):      *)
(* "open" until the first lease, then "active"; a suspend record makes it  *)
(* "suspended" (a new lease makes it "active" again) and a close record    *)
(* makes it "closed", which is final.  Content (entry, fork, switch) and   *)
(* the suspend and close records themselves are written only while the     *)
(* session is "active" (LifecycleInv).                                     *)
(*                                                                         *)
(* The module deliberately does not EXTEND Sequences: the action that      *)
(* appends an entry is named Append (event entry.appended), which would    *)
(* clash with Sequences' Append.  The few sequence operators needed are    *)
(* restated below with Sequences' meaning.                                 *)
(*                                                                         *)
(* The model in models/session.ts transcribes this module action by        *)
(* action with the same names; spec/README.md maps both to the code.       *)
(***************************************************************************)
EXTENDS Naturals, FiniteSets

CONSTANTS
    Writers,     \* the processes that may write the session (model values)
    Branches,    \* the branch names that may ever exist; "main" exists from the start
    MaxRecords,  \* bound on Len(log) + Len(buf): every record counts (lease, entry, fork, switch, suspend, close)
    MaxEpoch     \* bound on the number of lease grants

ASSUME /\ "main" \in Branches
       /\ MaxRecords \in Nat
       /\ MaxEpoch \in Nat

\* The value of holder while nobody holds the lease.
None == "none"

ASSUME None \notin Writers

-----------------------------------------------------------------------------
(***************************************************************************)
(* Sequence operators (as in the standard module Sequences).               *)
(***************************************************************************)
Len(s) == Cardinality(DOMAIN s)

s \o t == [i \in 1..(Len(s) + Len(t)) |-> IF i <= Len(s) THEN s[i] ELSE t[i - Len(s)]]

SubSeq(s, m, n) == [i \in 1..(1 + n - m) |-> s[i + m - 1]]

IsSeqOf(s, S) == /\ DOMAIN s = 1..Len(s)
                 /\ \A i \in 1..Len(s) : s[i] \in S

IsPrefix(s, t) == /\ Len(s) <= Len(t)
                  /\ SubSeq(t, 1, Len(s)) = s

-----------------------------------------------------------------------------
VARIABLES
    \* The durable records: the part of the journal file that was fsynced.
    \* Everything recovery replays comes from here.
    log,
    \* Records written by the current lease holder but not yet flushed.
    \* They are not acknowledged to their callers; a crash may lose any
    \* suffix of them.
    buf,
    \* TRUE iff the durable file ends with a partial record (a crash hit
    \* the middle of a write).  The partial record is not in log.
    torn,
    \* The highest lease epoch granted so far (0 = never granted).  Every
    \* grant is durable in log as a lease record before it is used.
    epoch,
    \* The writer that holds the lease, or None.
    holder,
    \* [Writers -> Nat]: the epoch each writer believes it holds (0 = none).
    \* A writer w with wEpoch[w] # 0 /\ wEpoch[w] # epoch is stale: its
    \* lease was taken over, and any write it attempts must be refused.
    wEpoch,
    \* The prefix of the journal acknowledged to callers: what was flushed.
    \* Never shrinks; nothing in it may ever be lost.
    acked,
    \* TRUE iff the journal is open; FALSE between Crash and Recover.
    up

vars == <<log, buf, torn, epoch, holder, wEpoch, acked, up>>

-----------------------------------------------------------------------------
(***************************************************************************)
(* Records.                                                                *)
(***************************************************************************)
LeaseRecord(e)          == [type |-> "lease", epoch |-> e]
EntryRecord(i, p, b, e) == [type |-> "entry", id |-> i, parent |-> p, branch |-> b, epoch |-> e]
ForkRecord(b, i, e)     == [type |-> "fork", branch |-> b, at |-> i, epoch |-> e]
SwitchRecord(b, e)      == [type |-> "switch", branch |-> b, epoch |-> e]
SuspendRecord(e)        == [type |-> "suspend", epoch |-> e]
CloseRecord(e)          == [type |-> "close", epoch |-> e]

LeaseRecords  == [type : {"lease"}, epoch : 1..MaxEpoch]
EntryRecords  == [type : {"entry"}, id : 1..MaxRecords, parent : 0..MaxRecords,
                  branch : Branches, epoch : 1..MaxEpoch]
ForkRecords   == [type : {"fork"}, branch : Branches, at : 0..MaxRecords, epoch : 1..MaxEpoch]
SwitchRecords == [type : {"switch"}, branch : Branches, epoch : 1..MaxEpoch]
SuspendRecords == [type : {"suspend"}, epoch : 1..MaxEpoch]
CloseRecords  == [type : {"close"}, epoch : 1..MaxEpoch]
Records       == LeaseRecords \cup EntryRecords \cup ForkRecords \cup SwitchRecords
                 \cup SuspendRecords \cup CloseRecords

\* The records that only an active session accepts: tree content, and the
\* records that end the activity.
ActiveOnly == {"entry", "fork", "switch", "suspend", "close"}

(***************************************************************************)
(* Derived state: a fold of a record sequence (the live state of a         *)
(* session is a fold of its journal; it is never stored twice).            *)
(***************************************************************************)

\* [branch -> head entry id] after the first n records of seq.  "main"
\* exists from the start with head 0.  An entry moves the head of its branch
\* (an entry naming a branch that does not exist changes nothing); a fork
\* creates its branch with head at.
RECURSIVE HeadsUpTo(_, _)
HeadsUpTo(seq, n) ==
    IF n = 0
    THEN [b \in {"main"} |-> 0]
    ELSE LET h == HeadsUpTo(seq, n - 1)
             r == seq[n]
         IN  CASE r.type = "entry" ->
                    [b \in DOMAIN h |-> IF b = r.branch THEN r.id ELSE h[b]]
               [] r.type = "fork" ->
                    [b \in DOMAIN h \cup {r.branch} |-> IF b = r.branch THEN r.at ELSE h[b]]
               [] OTHER -> h

Heads(seq) == HeadsUpTo(seq, Len(seq))

\* The active branch after the first n records of seq: the last switch, or "main".
RECURSIVE ActiveUpTo(_, _)
ActiveUpTo(seq, n) ==
    IF n = 0 THEN "main"
    ELSE IF seq[n].type = "switch" THEN seq[n].branch
    ELSE ActiveUpTo(seq, n - 1)

Active(seq) == ActiveUpTo(seq, Len(seq))

\* The lifecycle status after the first n records of seq: "open" before any
\* lease; the last lease, suspend or close record decides it afterwards
\* (lease -> "active", suspend -> "suspended", close -> "closed"); content
\* records do not change it.
RECURSIVE StatusUpTo(_, _)
StatusUpTo(seq, n) ==
    IF n = 0 THEN "open"
    ELSE CASE seq[n].type = "lease"   -> "active"
           [] seq[n].type = "suspend" -> "suspended"
           [] seq[n].type = "close"   -> "closed"
           [] OTHER                   -> StatusUpTo(seq, n - 1)

Status(seq) == StatusUpTo(seq, Len(seq))

\* The ids of the entries in seq.
Entries(seq) == { seq[i].id : i \in { j \in 1..Len(seq) : seq[j].type = "entry" } }

\* The epoch of the lease in force at position i of seq: the epoch of the
\* last lease record before position i, or 0 if there is none.
RECURSIVE LeaseEpochBefore(_, _)
LeaseEpochBefore(seq, i) ==
    IF i <= 1 THEN 0
    ELSE IF seq[i - 1].type = "lease" THEN seq[i - 1].epoch
    ELSE LeaseEpochBefore(seq, i - 1)

\* The branches of seq are well formed: the active branch exists and every
\* head is the root or an entry of seq.
HeadsWellFormed(seq) ==
    /\ Active(seq) \in DOMAIN Heads(seq)
    /\ \A b \in DOMAIN Heads(seq) : Heads(seq)[b] \in {0} \cup Entries(seq)

\* The i-th record of seq is a legal step from the session its prefix
\* describes (this is what Append, Fork and Switch guarantee).
WellPlaced(seq, i) ==
    LET r == seq[i]
        h == Heads(SubSeq(seq, 1, i - 1))
    IN  CASE r.type = "entry" ->
               /\ r.id = i
               /\ r.branch \in DOMAIN h
               /\ r.parent = h[r.branch]
               /\ r.parent = 0 \/ (r.parent < i /\ seq[r.parent].type = "entry")
          [] r.type = "fork" ->
               /\ r.branch \notin DOMAIN h
               /\ r.at = 0 \/ (r.at < i /\ seq[r.at].type = "entry")
          [] r.type = "switch" ->
               r.branch \in DOMAIN h
          [] OTHER -> TRUE

\* The journal has room for one more record.
HasRoom == Len(log) + Len(buf) < MaxRecords

\* w may write: the journal is open, w holds the lease, and the epoch w
\* believes it holds is the one in force (the fence check).
CanWrite(w) == /\ up
               /\ holder = w
               /\ wEpoch[w] = epoch

-----------------------------------------------------------------------------
(***************************************************************************)
(* Actions.                                                                *)
(***************************************************************************)
Init ==
    /\ log = << >>
    /\ buf = << >>
    /\ torn = FALSE
    /\ epoch = 0
    /\ holder = None
    /\ wEpoch = [w \in Writers |-> 0]
    /\ acked = << >>
    /\ up = TRUE

\* w is granted the next epoch.  The lease record is written and flushed on
\* its own (buf is empty while nobody holds the lease), so the new epoch is
\* durable before w writes anything under it.  A closed session never gets
\* a writer again; an open, active (after Expire or Crash) or suspended one
\* becomes active.
AcquireLease(w) ==
    /\ up
    /\ holder = None
    /\ Status(log) # "closed"
    /\ epoch < MaxEpoch
    /\ HasRoom
    /\ epoch' = epoch + 1
    /\ holder' = w
    /\ wEpoch' = [wEpoch EXCEPT ![w] = epoch + 1]
    /\ log' = log \o << LeaseRecord(epoch + 1) >>
    /\ acked' = log'
    /\ UNCHANGED <<buf, torn, up>>

\* w appends an entry to existing branch b; its parent is b's head.
Append(w, b) ==
    /\ CanWrite(w)
    /\ Status(log \o buf) = "active"
    /\ HasRoom
    /\ b \in DOMAIN Heads(log \o buf)
    /\ buf' = buf \o << EntryRecord(Len(log) + Len(buf) + 1, Heads(log \o buf)[b], b, epoch) >>
    /\ UNCHANGED <<log, torn, epoch, holder, wEpoch, acked, up>>

\* w creates branch b (which must not exist yet) with head at: the root or
\* an existing entry.  Nothing is copied.
Fork(w, b, at) ==
    /\ CanWrite(w)
    /\ Status(log \o buf) = "active"
    /\ HasRoom
    /\ b \notin DOMAIN Heads(log \o buf)
    /\ at \in {0} \cup Entries(log \o buf)
    /\ buf' = buf \o << ForkRecord(b, at, epoch) >>
    /\ UNCHANGED <<log, torn, epoch, holder, wEpoch, acked, up>>

\* w makes the existing branch b the active one.
Switch(w, b) ==
    /\ CanWrite(w)
    /\ Status(log \o buf) = "active"
    /\ HasRoom
    /\ b \in DOMAIN Heads(log \o buf)
    /\ buf' = buf \o << SwitchRecord(b, epoch) >>
    /\ UNCHANGED <<log, torn, epoch, holder, wEpoch, acked, up>>

\* Group commit: every buffered record becomes durable at once (one fsync)
\* and is acknowledged.
Flush ==
    /\ up
    /\ buf # << >>
    /\ log' = log \o buf
    /\ buf' = << >>
    /\ acked' = log'
    /\ UNCHANGED <<torn, epoch, holder, wEpoch, up>>

\* A writer whose lease was taken over tries to write and is refused (typed
\* error StaleWriter): nothing changes.  The step exists so that traces and
\* tests can name the refusal.
StaleWrite(w) ==
    /\ up
    /\ wEpoch[w] # 0
    /\ wEpoch[w] # epoch
    /\ UNCHANGED vars

\* The holder's lock is considered stale (e.g. its process is paused) and
\* is released.  The writer keeps its wEpoch: once another writer acquires
\* the lease it is a stale writer.  Only a holder with nothing buffered can
\* lose the lease this way (a flush comes first).
Expire ==
    /\ up
    /\ holder # None
    /\ buf = << >>
    /\ holder' = None
    /\ UNCHANGED <<log, buf, torn, epoch, wEpoch, acked, up>>

\* The process dies.  Some prefix of buf reached the disk, possibly followed
\* by a partial record.  There is one process: every writer dies with it.
\* The epoch counter survives: it is the epoch of the last durable lease
\* record (see SingleWriterInv).
Crash ==
    /\ up
    /\ \E k \in 0..Len(buf), t \in BOOLEAN :
          /\ log' = log \o SubSeq(buf, 1, k)
          /\ torn' = t
    /\ buf' = << >>
    /\ holder' = None
    /\ wEpoch' = [w \in Writers |-> 0]
    /\ up' = FALSE
    /\ UNCHANGED <<epoch, acked>>

\* The journal is reopened: a torn tail is cut back to the last whole record.
Recover ==
    /\ ~up
    /\ torn' = FALSE
    /\ up' = TRUE
    /\ UNCHANGED <<log, buf, epoch, holder, wEpoch, acked>>

\* w suspends the session: once its appends are durable (buf is empty), the
\* suspend record is written and flushed on its own, and w lets go of its
\* lease cleanly (wEpoch[w] = 0: w is not a stale writer, it holds nothing).
Suspend(w) ==
    /\ CanWrite(w)
    /\ Status(log \o buf) = "active"
    /\ buf = << >>
    /\ HasRoom
    /\ log' = log \o << SuspendRecord(epoch) >>
    /\ acked' = log'
    /\ holder' = None
    /\ wEpoch' = [wEpoch EXCEPT ![w] = 0]
    /\ UNCHANGED <<buf, torn, epoch, up>>

\* w closes the session: as Suspend, with a close record.  Closed is final:
\* AcquireLease is disabled from now on.
Close(w) ==
    /\ CanWrite(w)
    /\ Status(log \o buf) = "active"
    /\ buf = << >>
    /\ HasRoom
    /\ log' = log \o << CloseRecord(epoch) >>
    /\ acked' = log'
    /\ holder' = None
    /\ wEpoch' = [wEpoch EXCEPT ![w] = 0]
    /\ UNCHANGED <<buf, torn, epoch, up>>

Next ==
    \/ \E w \in Writers : AcquireLease(w)
    \/ \E w \in Writers, b \in Branches : Append(w, b)
    \/ \E w \in Writers, b \in Branches, at \in 0..MaxRecords : Fork(w, b, at)
    \/ \E w \in Writers, b \in Branches : Switch(w, b)
    \/ Flush
    \/ \E w \in Writers : StaleWrite(w)
    \/ Expire
    \/ Crash
    \/ Recover
    \/ \E w \in Writers : Suspend(w)
    \/ \E w \in Writers : Close(w)

\* Weak fairness on Flush and Recover: an open journal does not keep
\* records unacknowledged forever, and a crashed journal is reopened.
Spec == Init /\ [][Next]_vars /\ WF_vars(Flush) /\ WF_vars(Recover)

-----------------------------------------------------------------------------
(***************************************************************************)
(* Invariants.                                                             *)
(***************************************************************************)
TypeInv ==
    /\ IsSeqOf(log, Records)
    /\ IsSeqOf(buf, Records)
    /\ Len(log) + Len(buf) <= MaxRecords
    /\ torn \in BOOLEAN
    /\ epoch \in 0..MaxEpoch
    /\ holder \in Writers \cup {None}
    /\ wEpoch \in [Writers -> 0..MaxEpoch]
    /\ IsSeqOf(acked, Records)
    /\ up \in BOOLEAN

\* Tree: every entry's id is its position, its branch existed and its
\* parent was that branch's head, so the parent is 0 or an entry that
\* precedes it; every fork creates a new branch at 0 or an earlier entry;
\* every switch targets an existing branch.
TreeInv ==
    \A i \in 1..Len(log \o buf) : WellPlaced(log \o buf, i)

\* The session the journal describes has an existing active branch, and
\* every branch head is the root or an entry.
BranchHeadsInv ==
    HeadsWellFormed(log \o buf)

\* Single writer: at most one writer holds the epoch in force; the holder
\* holds it; no writer believes in a future epoch; only the holder has
\* buffered writes; and the epoch in force is the one of the last durable
\* lease record, so a recovering process re-derives it from the journal and
\* never grants an epoch twice.
SingleWriterInv ==
    /\ \A v, w \in Writers :
          (epoch # 0 /\ wEpoch[v] = epoch /\ wEpoch[w] = epoch) => v = w
    /\ holder # None => wEpoch[holder] = epoch
    /\ \A w \in Writers : wEpoch[w] <= epoch
    /\ buf # << >> => holder # None
    /\ epoch = LeaseEpochBefore(log, Len(log) + 1)

\* No lost update: nothing acknowledged is ever lost, and no stale write was
\* ever accepted: every non-lease record (entry, fork, switch, suspend,
\* close) carries the epoch of the lease in force at its position.
NoLostUpdateInv ==
    /\ IsPrefix(acked, log)
    /\ \A i \in 1..Len(log \o buf) :
          (log \o buf)[i].type # "lease" =>
              (log \o buf)[i].epoch = LeaseEpochBefore(log \o buf, i)

\* Prefix recovery: a torn tail exists only while the journal is down;
\* nothing is buffered or held while it is down; and the durable log alone
\* (what recovery replays) describes a well-formed session.
PrefixRecoveryInv ==
    /\ up => ~torn
    /\ ~up => (buf = << >> /\ holder = None)
    /\ HeadsWellFormed(log)

\* Lifecycle: every content, suspend or close record was written while the
\* session was active (the fold of the records before it is "active");
\* nothing follows a close record (closed is final); and a writer holds the
\* lease only while the session is active.
LifecycleInv ==
    LET j == log \o buf
    IN  /\ \A i \in 1..Len(j) :
              j[i].type \in ActiveOnly => StatusUpTo(j, i - 1) = "active"
        /\ \A i \in 1..Len(j) :
              j[i].type = "close" => i = Len(j)
        /\ holder # None => Status(j) = "active"

-----------------------------------------------------------------------------
(***************************************************************************)
(* Liveness (checked by TLC only; see spec/README.md).                     *)
(***************************************************************************)
\* Buffered records are eventually flushed or lost in a crash: never held
\* unacknowledged forever.
BufferDrainsProp == (buf # << >>) ~> (buf = << >>)

\* A crashed journal is eventually reopened.
RecoversProp == (~up) ~> up

=============================================================================
