---------------------------- MODULE MCAuthority ----------------------------
(***************************************************************************)
(* Small constants for model checking Authority with TLC                   *)
(* (MCAuthority.cfg).  models/authority.ts exports the same constants as   *)
(* MC, and test/models/authority.model.test.ts explores the model for      *)
(* them; the distinct-state count it asserts is recorded in                *)
(* spec/README.md.                                                         *)
(*                                                                         *)
(* Two calls: the root covers c1 outright and c2 only with an approval.    *)
(* One child may be derived from the root, with any claim: narrower (fewer *)
(* calls, more approvals, one use) or wider (c2 without an approval: an    *)
(* attempt to widen, which verification refuses).  Two principals, of      *)
(* whom only alice may approve (mallory's decisions never count).  The     *)
(* root expires at time 2 and has two uses (a child with one use can run   *)
(* out); a request's deadline is one tick after it, and the clock stops at *)
(* 3, so a request can be answered in time, too late, or expire, also      *)
(* across the one crash.                                                   *)
(***************************************************************************)
EXTENDS Authority

\* Model values (declared in MCAuthority.cfg as c1 = c1, ...).
CONSTANTS c1, c2, root, child, alice, mallory

MCCalls           == {c1, c2}
MCCapabilities    == {root, child}
MCRoot            == root
MCRootGrants      == {c1, c2}
MCRootApproval    == {c2}
MCRootExpiry      == 2
MCRootUses        == 2
MCMaxUses         == 2
MCPrincipals      == {alice, mallory}
MCApprovers       == {alice}
MCApprovalTimeout == 1
MCMaxTime         == 3
MCMaxCrashes      == 1

=============================================================================
