package eas

import "strings"

// labels is the closed set of command names a metric label may carry: the
// MS-ASCMD commands, the 2.5-era ones old devices still send, and Notify.
var labels = [...]string{
	"Sync", "SendMail", "SmartForward", "SmartReply", "GetAttachment",
	"GetHierarchy", "CreateCollection", "DeleteCollection", "MoveCollection",
	"FolderSync", "FolderCreate", "FolderDelete", "FolderUpdate", "MoveItems",
	"GetItemEstimate", "MeetingResponse", "Search", "Settings", "Ping",
	"ItemOperations", "Provision", "ResolveRecipients", "ValidateCert", "Find",
	"Notify",
}

func canonicalCommand(cmd string) (string, bool) {
	for _, l := range labels {
		if strings.EqualFold(l, cmd) {
			return l, true
		}
	}
	return "", false
}

// CommandLabel maps a command to a metric label value: its canonical name
// when it is a known command (in any case), "none" when there is none
// (OPTIONS), and "other" for anything else, so a client cannot grow the
// label's cardinality.
func CommandLabel(cmd string) string {
	if cmd == "" {
		return "none"
	}
	if c, ok := canonicalCommand(cmd); ok {
		return c
	}
	return "other"
}

// IsLongPoll reports whether the request may legitimately be held open by
// the server for up to an hour, so latency histograms can leave it out:
// every Ping, and every Sync, since a Sync's Wait is in the WBXML body,
// which the proxy streams without reading.
func IsLongPoll(q Query) bool {
	return strings.EqualFold(q.Cmd, "Ping") || strings.EqualFold(q.Cmd, "Sync")
}
