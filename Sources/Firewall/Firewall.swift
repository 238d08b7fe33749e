// Firewall: berth's own nftables table, over NETLINK_NETFILTER, without nft.
//
// Layers, from what callers write to what the kernel runs:
//
//   BerthRuleset      the table berth runs: sets and maps, chains, rules; DEL and GC batches
//   Rule, Statement   rules at the level of nft syntax: `.lookup(concat: [.ipSaddr, .oifname], set: "own_v4")`;
//                     `meta nfproto` and `meta l4proto` checks are added as nft adds them
//   Expression        the kernel's expressions with explicit registers (what listing returns)
//   SetDefinition,    sets and maps with nft's type numbers (so `nft list` prints them), and
//   Element           elements with userdata comments naming their owner
//   Batch             operations on one table with add/create and fail/ignore semantics
//   CompiledBatch     the batch as libnftnl builds it, one sendmsg; error acks mapped back to
//                     the operation, and the attribute offset to the element or expression
//   FirewallSocket    commit (atomic; success known from a GETGEN answer that follows the
//                     batch's errors) and listing; opened in the caller's namespace or inside
//                     another one on a short-lived thread
//
// Messages are built with libnftnl (the library nft itself uses); replies are read by the
// small parser in NetlinkReader.swift, which is also what the tests use to compare the bytes
// with nft's.
