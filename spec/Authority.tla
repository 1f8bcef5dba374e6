----------------------------- MODULE Authority -----------------------------
(***************************************************************************)
(* Keel authority: the one edge of a tool call from proposed to started.   *)
(*                                                                         *)
(* ToolCall.tla abstracts authority: its Start is enabled from proposed,   *)
(* and its Reject covers every closing before a start.  This module        *)
(* refines that edge (ToolCall.tla stays unchanged): between proposed and  *)
(* started, the call's decoded arguments are checked against a capability *)
(* and, where the capability demands it, against a person's approval that  *)
(* has a durable deadline.  Silence means no: a deadline that passes is a  *)
(* rejection.                                                              *)
(*                                                                         *)
(* Lifecycle of one call, the authority part (design section 3):           *)
(*   proposed -> authorized          Authorize(c, k): capability k covers  *)
(*                                   the call (verified, unrevoked,        *)
(*                                   unexpired, uses left)                 *)
(*   proposed -> denied              Deny(c): no capability covers it;     *)
(*                                   final, nothing runs                   *)
(*   authorized -> awaitingApproval  RequestApproval(c): k demands a       *)
(*                                   person's yes for c                    *)
(*   awaitingApproval -> approved    Approve(c, p)                         *)
(*   awaitingApproval -> rejected    RejectApproval(c, p); final           *)
(*   awaitingApproval -> expired     Expire(c): the deadline passed; final *)
(*   awaitingApproval -> rejected    Withdraw(c): the runtime withdraws    *)
(*                                   the request (the agent run was        *)
(*                                   cancelled or ran out of budget); not  *)
(*                                   a person's decision; final            *)
(*   authorized -> started           Start(c), when k demands no approval  *)
(*   approved -> started             Start(c)                              *)
(* started is final here: what follows is ToolCall.tla's business.  Start  *)
(* is the single path into started.  A decision that does not count (too   *)
(* late, a second one, by someone not allowed to approve, for other        *)
(* arguments) is an audit record that changes no state: IgnoreDecision.    *)
(*                                                                         *)
(* Refinement of ToolCall.tla (per call): proposed, authorized,            *)
(* awaitingApproval and approved are its proposed; denied, rejected and    *)
(* expired are its failed at attempt 0 (Reject); started is its started    *)
(* (attempt 1).  Authorize, RequestApproval, Approve and IgnoreDecision    *)
(* are stuttering steps for ToolCall.tla; Deny, RejectApproval, Expire and *)
(* Withdraw are its Reject; Start is its Start.                            *)
(*                                                                         *)
(* Capabilities are abstract: a finite set of nodes that form a tree by    *)
(* attenuation.  The runtime issues the root; whoever holds a node may     *)
(* derive a child that claims any caveats (a token is data: a holder can   *)
(* write any claim into a new block), and verification accepts a node     *)
(* only if every node of its chain is narrower than its parent.  A claim   *)
(* wider than its parent is an attempt to widen: the node exists, and      *)
(* every call that presents it is denied.  Signatures are not modelled:    *)
(* that a token cannot be forged or altered except by attenuation is an    *)
(* assumption (the fuzz tests of src/authority back it).                   *)
(*                                                                         *)
(* The journal is kept per call, as in ToolCall.tla: log[c] is the         *)
(* sequence of c's authority records, from its proposal on.  Record        *)
(* shapes:                                                                 *)
(*   [type |-> "proposed"]                                                 *)
(*   [type |-> "authorized", cap |-> k]                                    *)
(*   [type |-> "denied"]                                                   *)
(*   [type |-> "awaitingApproval", hash |-> h, approvers |-> A,            *)
(*    deadline |-> d]                                                      *)
(*   [type |-> "approved", by |-> p, hash |-> h, at |-> t]                 *)
(*   [type |-> "rejected", by |-> p]     (p = Runtime: Withdraw)           *)
(*   [type |-> "expired", deadline |-> d]                                  *)
(*   [type |-> "started", attempt |-> 1]                                   *)
(*                                                                         *)
(* The model in models/authority.ts transcribes this module action by      *)
(* action with the same names; spec/README.md maps both to the code.       *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS
    Calls,           \* the tool calls (model values); a call is a tool and its decoded arguments
    Capabilities,    \* the capability nodes (model values): the root and those that may be derived
    Root,            \* the capability the runtime issues (signed with its root key)
    RootGrants,      \* the calls the root covers
    RootApproval,    \* the calls the root covers only with a person's approval
    RootExpiry,      \* the root is valid while now < RootExpiry
    RootUses,        \* the root's use count: how many calls it may authorize
    MaxUses,         \* bound on the use count a derived node may claim
    Principals,      \* who may send an approval decision (model values)
    Approvers,       \* who may approve: recorded in every approval request
    ApprovalTimeout, \* an approval request's deadline is now + ApprovalTimeout
    MaxTime,         \* bound on the clock
    MaxCrashes       \* bound on the number of crashes

ASSUME /\ Root \in Capabilities
       /\ RootGrants \subseteq Calls
       /\ RootApproval \subseteq RootGrants
       /\ MaxTime \in Nat
       /\ RootExpiry \in 0..MaxTime
       /\ MaxUses \in Nat /\ MaxUses >= 1
       /\ RootUses \in 1..MaxUses
       /\ Approvers \subseteq Principals
       /\ ApprovalTimeout \in Nat /\ ApprovalTimeout >= 1
       /\ MaxCrashes \in Nat

\* Who withdraws a request (the by of Withdraw's rejected record): the
\* runtime, which is no principal, so never an approver.
Runtime == "runtime"

ASSUME Runtime \notin Principals

\* The hash of call c's decoded arguments: an approval binds to it.
HashOf(c) == <<"hash", c>>

Hashes == {HashOf(c) : c \in Calls}

\* A capability node: its parent (the root is its own parent), the calls it
\* covers, those of them it covers only with an approval, its expiry (valid
\* while now < expiry; a derived node keeps its parent's) and its use count.
CapRecords ==
    [parent : Capabilities, calls : SUBSET Calls, approval : SUBSET Calls,
     expiry : 0..MaxTime, uses : 1..MaxUses]

RootCap ==
    [parent |-> Root, calls |-> RootGrants, approval |-> RootApproval,
     expiry |-> RootExpiry, uses |-> RootUses]

\* What held of the capability an Authorize named, at that moment.
Checks ==
    [cap : Capabilities, verified : BOOLEAN, covered : BOOLEAN,
     revoked : BOOLEAN, expired : BOOLEAN, exhausted : BOOLEAN]

-----------------------------------------------------------------------------
VARIABLES
    \* [Calls -> Seq(Records)]: the durable journal, per call (the projection
    \* of the session journal on the call's id).  Survives crashes.
    log,
    \* The capability nodes that exist, as a function whose domain grows:
    \* caps[k] is node k's record.  The root exists from the start; a child
    \* is minted by Attenuate and never changes.  Tokens are data held
    \* outside the process: crashes do not touch them.
    caps,
    \* The revocation list: the nodes revoked by the operator (a node derived
    \* from a revoked one is revoked too, see Revoked).  Durable.
    revoked,
    \* The clock (Clock in the implementation), 0..MaxTime.  Time passes
    \* whether the process is up or not; deadlines are journaled, so a crash
    \* changes none of them.
    now,
    \* History variable (no counterpart in the code; it states AuthorityInv):
    \* for each authorized call, what held of the capability its Authorize
    \* named at that moment.  A function whose domain is the authorized calls.
    checked,
    \* The number of crashes so far (bounded by MaxCrashes).
    crashes,
    \* TRUE iff the process is up; FALSE between Crash and Restart.
    up

vars == <<log, caps, revoked, now, checked, crashes, up>>

-----------------------------------------------------------------------------
(***************************************************************************)
(* Records.                                                                *)
(***************************************************************************)
ProposedRecord         == [type |-> "proposed"]
AuthorizedRecord(k)    == [type |-> "authorized", cap |-> k]
DeniedRecord           == [type |-> "denied"]
AwaitingRecord(c, d)   == [type |-> "awaitingApproval", hash |-> HashOf(c), approvers |-> Approvers, deadline |-> d]
ApprovedRecord(p, h, t) == [type |-> "approved", by |-> p, hash |-> h, at |-> t]
RejectedRecord(p)      == [type |-> "rejected", by |-> p]
ExpiredRecord(d)       == [type |-> "expired", deadline |-> d]
StartedRecord          == [type |-> "started", attempt |-> 1]

Records ==
    [type : {"proposed", "denied"}]
    \cup [type : {"authorized"}, cap : Capabilities]
    \cup [type : {"awaitingApproval"}, hash : Hashes, approvers : SUBSET Principals, deadline : 0..MaxTime]
    \cup [type : {"approved"}, by : Principals, hash : Hashes, at : 0..MaxTime]
    \cup [type : {"rejected"}, by : Principals \cup {Runtime}]
    \cup [type : {"expired"}, deadline : 0..MaxTime]
    \cup [type : {"started"}, attempt : {1}]

\* What a call has before its first record.
NoRecord == [type |-> "none"]

CallStates == {"proposed", "authorized", "denied", "awaitingApproval", "approved", "rejected", "expired", "started"}

(***************************************************************************)
(* Derived state: capabilities.                                            *)
(***************************************************************************)
Minted == DOMAIN caps

\* Node k and every node it is derived from, up to the root.
RECURSIVE Chain(_)
Chain(k) == IF k = Root THEN {k} ELSE {k} \cup Chain(caps[k].parent)

\* The calls node record x covers without an approval.
Unapproved(x) == x.calls \ x.approval

\* Record x grants no more than record y: no call y does not cover, no call
\* without an approval that y covers only with one, no later expiry, no more
\* uses.  Attenuation is this order.
Narrower(x, y) ==
    /\ x.calls \subseteq y.calls
    /\ Unapproved(x) \subseteq Unapproved(y)
    /\ x.expiry <= y.expiry
    /\ x.uses <= y.uses

\* Verification: every node of k's chain is narrower than its parent (the
\* root is signed by the runtime's key).  A wider claim anywhere is refused.
Verified(k) == \A a \in Chain(k) \ {Root} : Narrower(caps[a], caps[caps[a].parent])

\* k or a node it is derived from is on the revocation list.
Revoked(k) == \E a \in Chain(k) : a \in revoked

\* k or a node it is derived from has expired.
Expired(k) == \E a \in Chain(k) : now >= caps[a].expiry

\* The authorized record of call c, if any, names cap.
AuthorizedWith(c, cap) == \E i \in 1..Len(log[c]) : log[c][i] = AuthorizedRecord(cap)

\* The uses of node k: the calls authorized by k or by a node derived from
\* k (a use through a child counts against every node of its chain, so a
\* holder cannot multiply uses by deriving children).  Counted from the
\* journal.
Uses(k) == Cardinality({c \in Calls : \E a \in Minted : AuthorizedWith(c, a) /\ k \in Chain(a)})

\* k or a node it is derived from has no use left.
Exhausted(k) == \E a \in Chain(k) : Uses(a) >= caps[a].uses

\* Capability k covers call c now.
Covers(k, c) ==
    /\ k \in Minted
    /\ Verified(k)
    /\ c \in caps[k].calls
    /\ ~Revoked(k)
    /\ ~Expired(k)
    /\ ~Exhausted(k)

\* Capability k covers c only with a person's approval.
Demands(k, c) == c \in caps[k].approval

\* The check Authorize(c, k) records in checked (evaluated before the step).
CheckOf(c, k) ==
    [cap |-> k, verified |-> Verified(k), covered |-> c \in caps[k].calls,
     revoked |-> Revoked(k), expired |-> Expired(k), exhausted |-> Exhausted(k)]

(***************************************************************************)
(* Derived state: calls (folds of a call's records).                       *)
(***************************************************************************)
Last(seq) == IF seq = << >> THEN NoRecord ELSE seq[Len(seq)]

\* The authority state of call c: the type of its latest record.
CallStatus(c) == Last(log[c]).type

\* c has an approval request (a durable awaitingApproval record).
HasRequest(c) == \E i \in 1..Len(log[c]) : log[c][i].type = "awaitingApproval"

\* c's approval request (only where HasRequest(c)).
Request(c) == log[c][CHOOSE i \in 1..Len(log[c]) : log[c][i].type = "awaitingApproval"]

\* The capability c's Authorize named (only where c was authorized).
AuthorizedBy(c) == log[c][CHOOSE i \in 1..Len(log[c]) : log[c][i].type = "authorized"].cap

\* c has a counted decision: approved, rejected (by an approver, or
\* withdrawn by the runtime) or expired (stable).
Decided(c) == \E i \in 1..Len(log[c]) : log[c][i].type \in {"approved", "rejected", "expired"}

\* A decision by p for arguments with hash h would count now: c awaits
\* approval, p may approve, h is the hash of c's arguments the request
\* binds to, and the deadline has not come.
Counts(c, p, h) ==
    /\ CallStatus(c) = "awaitingApproval"
    /\ p \in Request(c).approvers
    /\ h = Request(c).hash
    /\ now < Request(c).deadline

\* Record r is a step of the authority lifecycle of call c from the record
\* prev before it (NoRecord for the first): what the ToolCall machine
\* accepts on this edge.
CanFollow(c, prev, r) ==
    CASE r.type = "proposed" -> prev.type = "none"
      [] r.type \in {"authorized", "denied"} -> prev.type = "proposed"
      [] r.type = "awaitingApproval" ->
            /\ prev.type = "authorized"
            /\ prev.cap \in Minted
            /\ Demands(prev.cap, c)
      [] r.type \in {"approved", "rejected", "expired"} -> prev.type = "awaitingApproval"
      [] r.type = "started" ->
            \/ prev.type = "approved"
            \/ /\ prev.type = "authorized"
               /\ prev.cap \in Minted
               /\ ~Demands(prev.cap, c)
      [] OTHER -> FALSE

\* Appends record r to c's journal.
Journal(c, r) == log' = [log EXCEPT ![c] = Append(@, r)]

-----------------------------------------------------------------------------
(***************************************************************************)
(* Actions.                                                                *)
(***************************************************************************)
\* Every call is proposed (ToolCall.tla's Propose); only the root exists.
Init ==
    /\ log = [c \in Calls |-> << ProposedRecord >>]
    /\ caps = [k \in {Root} |-> RootCap]
    /\ revoked = {}
    /\ now = 0
    /\ checked = << >>   \* the empty function: no call is authorized yet
    /\ crashes = 0
    /\ up = TRUE

\* The executor's check: capability k, presented with call c, covers c's
\* decoded arguments now.  Journals k's id (uses are counted from it).
Authorize(c, k) ==
    /\ up
    /\ CallStatus(c) = "proposed"
    /\ Covers(k, c)
    /\ Journal(c, AuthorizedRecord(k))
    /\ checked' = [x \in DOMAIN checked \cup {c} |-> IF x = c THEN CheckOf(c, k) ELSE checked[x]]
    /\ UNCHANGED <<caps, revoked, now, crashes, up>>

\* The capability presented with c (some minted node) does not cover it:
\* the tool is not granted, an argument caveat fails, it expired, it is
\* revoked, its uses are spent, or a node of its chain claims more than its
\* parent (it does not verify).  Final: nothing runs, and the model sees an
\* error naming the missing authority.
Deny(c) ==
    /\ up
    /\ CallStatus(c) = "proposed"
    /\ \E k \in Minted : ~Covers(k, c)
    /\ Journal(c, DeniedRecord)
    /\ UNCHANGED <<caps, revoked, now, checked, crashes, up>>

\* The capability that authorized c demands a person's approval: the
\* request binds to the hash of c's arguments, names who may approve, and
\* has a deadline taken from the clock, journaled (so a restart honours the
\* remaining time).  Only while the deadline is within the modelled time.
RequestApproval(c) ==
    /\ up
    /\ CallStatus(c) = "authorized"
    /\ Demands(AuthorizedBy(c), c)
    /\ now + ApprovalTimeout <= MaxTime
    /\ Journal(c, AwaitingRecord(c, now + ApprovalTimeout))
    /\ UNCHANGED <<caps, revoked, now, checked, crashes, up>>

\* An allowed approver says yes to c's exact arguments before the deadline.
Approve(c, p) ==
    /\ up
    /\ Counts(c, p, HashOf(c))
    /\ Journal(c, ApprovedRecord(p, HashOf(c), now))
    /\ UNCHANGED <<caps, revoked, now, checked, crashes, up>>

\* An allowed approver says no before the deadline.  Final.
RejectApproval(c, p) ==
    /\ up
    /\ Counts(c, p, HashOf(c))
    /\ Journal(c, RejectedRecord(p))
    /\ UNCHANGED <<caps, revoked, now, checked, crashes, up>>

\* The deadline has come with no decision: a rejection.  Final.
Expire(c) ==
    /\ up
    /\ CallStatus(c) = "awaitingApproval"
    /\ now >= Request(c).deadline
    /\ Journal(c, ExpiredRecord(Request(c).deadline))
    /\ UNCHANGED <<caps, revoked, now, checked, crashes, up>>

\* The runtime withdraws the request of a call still awaiting approval: the
\* agent run it belongs to was cancelled or ran out of budget.  Not a
\* person's decision: no approver, hash or deadline check (before or after
\* the deadline).  It is the call's one counted decision, a rejection by
\* Runtime.  Final.  Not required to happen (no fairness).
Withdraw(c) ==
    /\ up
    /\ CallStatus(c) = "awaitingApproval"
    /\ Journal(c, RejectedRecord(Runtime))
    /\ UNCHANGED <<caps, revoked, now, checked, crashes, up>>

\* A decision (a yes or a no: which one does not matter here) by p for
\* arguments with hash h that does not count (after
\* the deadline, after another decision, by someone not allowed to approve,
\* for other arguments, about a call that was never asked): the
\* implementation journals it for the audit (tool.call.decisionIgnored); it
\* changes no state, so here it is a step that changes no variable.
IgnoreDecision(c, p, h) ==
    /\ up
    /\ ~Counts(c, p, h)
    /\ UNCHANGED vars

\* The single path into started: from authorized when the capability
\* demands no approval for c, or from approved.  ToolCall.tla's Start
\* (attempt 1) takes over.
Start(c) ==
    /\ up
    /\ \/ CallStatus(c) = "authorized" /\ ~Demands(AuthorizedBy(c), c)
       \/ CallStatus(c) = "approved"
    /\ Journal(c, StartedRecord)
    /\ UNCHANGED <<caps, revoked, now, checked, crashes, up>>

\* A holder of k derives node ch, claiming calls g, of which a need an
\* approval, and u uses; it keeps k's expiry.  Any claim can be written (a
\* token is data); a claim wider than k is minted all the same, and
\* verification refuses it (Verified), so every call presenting it is
\* denied.  Offline: the process need not be up.
Attenuate(k, ch, g, a, u) ==
    /\ k \in Minted
    /\ ch \notin Minted
    /\ a \subseteq g
    /\ caps' = [x \in Minted \cup {ch} |->
                   IF x = ch
                   THEN [parent |-> k, calls |-> g, approval |-> a, expiry |-> caps[k].expiry, uses |-> u]
                   ELSE caps[x]]
    /\ UNCHANGED <<log, revoked, now, checked, crashes, up>>

\* The operator revokes k: k and every node derived from it, now or later,
\* are revoked (Revoked).  Takes effect at the next Authorize: a call
\* already authorized is not recalled.
Revoke(k) ==
    /\ k \in Minted
    /\ k \notin revoked
    /\ revoked' = revoked \cup {k}
    /\ UNCHANGED <<log, caps, now, checked, crashes, up>>

\* Time passes, up or down.
Tick ==
    /\ now < MaxTime
    /\ now' = now + 1
    /\ UNCHANGED <<log, caps, revoked, checked, crashes, up>>

\* The process dies.  Nothing durable is lost: the journal (with every
\* deadline), the tokens, the revocation list and the clock stay.
Crash ==
    /\ up
    /\ crashes < MaxCrashes
    /\ up' = FALSE
    /\ crashes' = crashes + 1
    /\ UNCHANGED <<log, caps, revoked, now, checked>>

\* The process restarts and replays the journal: a call still awaiting
\* approval keeps its journaled deadline (the remaining time is honoured,
\* and it may have passed while down: Expire).
Restart ==
    /\ ~up
    /\ up' = TRUE
    /\ UNCHANGED <<log, caps, revoked, now, checked, crashes>>

Next ==
    \/ \E c \in Calls, k \in Capabilities : Authorize(c, k)
    \/ \E c \in Calls : Deny(c)
    \/ \E c \in Calls : RequestApproval(c)
    \/ \E c \in Calls, p \in Principals : Approve(c, p)
    \/ \E c \in Calls, p \in Principals : RejectApproval(c, p)
    \/ \E c \in Calls : Expire(c)
    \/ \E c \in Calls : Withdraw(c)
    \/ \E c \in Calls, p \in Principals, h \in Hashes : IgnoreDecision(c, p, h)
    \/ \E c \in Calls : Start(c)
    \/ \E k, ch \in Capabilities, g \in SUBSET Calls, a \in SUBSET Calls, u \in 1..MaxUses : Attenuate(k, ch, g, a, u)
    \/ \E k \in Capabilities : Revoke(k)
    \/ Tick
    \/ Crash
    \/ Restart

\* Weak fairness: time passes; a crashed process restarts; a request whose
\* deadline has come expires.  Nobody has to answer: Approve and
\* RejectApproval have none (silence means no), nor has Withdraw (a run need
\* not be cancelled).  Authorize, Deny and Start have none either: a
\* proposed call may stay proposed (as in ToolCall.tla).
Fairness ==
    /\ WF_vars(Tick)
    /\ WF_vars(Restart)
    /\ \A c \in Calls : WF_vars(Expire(c))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
(***************************************************************************)
(* Invariants.                                                             *)
(***************************************************************************)
TypeInv ==
    /\ log \in [Calls -> Seq(Records)]
    /\ Minted \subseteq Capabilities
    /\ Root \in Minted
    /\ caps[Root] = RootCap
    /\ \A k \in Minted : caps[k] \in CapRecords
    /\ revoked \subseteq Minted
    /\ now \in 0..MaxTime
    /\ DOMAIN checked \subseteq Calls
    /\ \A c \in DOMAIN checked : checked[c] \in Checks
    /\ crashes \in 0..MaxCrashes
    /\ up \in BOOLEAN

\* Authority: every authorized call was authorized by a minted capability
\* that, at that moment, was verified, covered it, and was not revoked, not
\* expired and not out of uses; no node is ever used more than its count.
\* Every started call was authorized, and if the capability demanded an
\* approval, an approval by an allowed approver of the request, for the
\* hash of the call's arguments, precedes the start.
AuthorityInv ==
    /\ \A c \in DOMAIN checked :
          /\ checked[c].cap \in Minted
          /\ AuthorizedWith(c, checked[c].cap)
          /\ checked[c].verified
          /\ checked[c].covered
          /\ ~checked[c].revoked
          /\ ~checked[c].expired
          /\ ~checked[c].exhausted
    /\ \A k \in Minted : Uses(k) <= caps[k].uses
    /\ \A c \in Calls :
          \A i \in 1..Len(log[c]) :
              log[c][i].type = "started" =>
                  /\ c \in DOMAIN checked
                  /\ \E j \in 1..(i - 1) : log[c][j] = AuthorizedRecord(checked[c].cap)
                  /\ Demands(checked[c].cap, c) =>
                        \E j, m \in 1..(i - 1) :
                            /\ m < j
                            /\ log[c][m].type = "awaitingApproval"
                            /\ log[c][m].hash = HashOf(c)
                            /\ log[c][j].type = "approved"
                            /\ log[c][j].by \in log[c][m].approvers
                            /\ log[c][j].by \in Approvers
                            /\ log[c][j].hash = HashOf(c)

\* Attenuation: the nodes form a tree rooted at Root, and every capability
\* an authorization accepted grants a subset of every node it is derived
\* from (transitively, and parent by parent): nothing wider is accepted.
AttenuationInv ==
    /\ \A k \in Minted : caps[k].parent \in Minted /\ Root \in Chain(k)
    /\ \A c \in Calls :
          \A i \in 1..Len(log[c]) :
              log[c][i].type = "authorized" =>
                  LET k == log[c][i].cap
                  IN  /\ k \in Minted
                      /\ \A a \in Chain(k) : Narrower(caps[k], caps[a])
                      /\ \A a \in Chain(k) \ {Root} : Narrower(caps[a], caps[caps[a].parent])

\* Expiry: no approval is accepted at or after its deadline; an expiry
\* happens only once its request's deadline has come; an expired call never
\* starts.
ExpiryInv ==
    \A c \in Calls :
        \A i \in 1..Len(log[c]) :
            /\ log[c][i].type = "approved" =>
                  /\ log[c][i].at <= now
                  /\ \E j \in 1..(i - 1) :
                        log[c][j].type = "awaitingApproval" /\ log[c][i].at < log[c][j].deadline
            /\ log[c][i].type = "expired" =>
                  /\ log[c][i].deadline <= now
                  /\ \E j \in 1..(i - 1) :
                        log[c][j].type = "awaitingApproval" /\ log[c][j].deadline = log[c][i].deadline
                  /\ \A j \in 1..Len(log[c]) : log[c][j].type # "started"

\* One decision: a call has at most one approval request, and at most one
\* counted decision (approved, rejected or expired: a withdrawal by the
\* runtime is a rejected record and counts too), which follows the
\* request; a yes or a no that counted was said by an approver the request
\* allows, or is the runtime's withdrawal (a no).  Every other decision is
\* an IgnoreDecision (no record here).
OneDecisionInv ==
    \A c \in Calls :
        LET requests  == {i \in 1..Len(log[c]) : log[c][i].type = "awaitingApproval"}
            decisions == {i \in 1..Len(log[c]) : log[c][i].type \in {"approved", "rejected", "expired"}}
        IN  /\ Cardinality(requests) <= 1
            /\ Cardinality(decisions) <= 1
            /\ \A i \in decisions :
                  \E j \in requests :
                      /\ j < i
                      /\ (log[c][i].type \in {"approved", "rejected"} /\ log[c][i] # RejectedRecord(Runtime))
                            => log[c][i].by \in log[c][j].approvers

\* The single path: each call's records are a path of the authority
\* lifecycle (CanFollow), so started follows authorized (with no approval
\* demanded) or approved, and nothing follows it.
SinglePathInv ==
    \A c \in Calls :
        \A i \in 1..Len(log[c]) :
            /\ CanFollow(c, IF i = 1 THEN NoRecord ELSE log[c][i - 1], log[c][i])
            /\ log[c][i].type = "started" =>
                  /\ i = Len(log[c])
                  /\ i > 1
                  /\ \/ log[c][i - 1].type = "approved"
                     \/ log[c][i - 1].type = "authorized" /\ ~Demands(log[c][i - 1].cap, c)

-----------------------------------------------------------------------------
(***************************************************************************)
(* Liveness (checked by TLC only; see spec/README.md for what the model    *)
(* test checks instead).                                                   *)
(***************************************************************************)
\* Every call awaiting approval is eventually decided: approved, rejected,
\* or expired (nobody has to answer: the deadline decides; a withdrawal
\* decides it too, but need not happen).
DecisionProp == \A c \in Calls : CallStatus(c) = "awaitingApproval" ~> Decided(c)

=============================================================================
