package proxytest

import "net/http"

// UpgradeEcho is a backend handler for protocol-upgrade tests: it answers
// "Connection: Upgrade" with an Upgrade of "websocket" or "echo" with 101
// Switching Protocols to that protocol, then reads one line from the
// upgraded connection and writes it back prefixed with "echo: ". Other
// requests get 400.
func UpgradeEcho(w http.ResponseWriter, r *http.Request) {
	up := r.Header.Get("Upgrade")
	if up != "websocket" && up != "echo" || r.Header.Get("Connection") != "Upgrade" {
		http.Error(w, "want Connection: Upgrade, Upgrade: websocket or echo", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + up + "\r\n\r\n")
	brw.Flush()
	line, _ := brw.ReadString('\n')
	brw.WriteString("echo: " + line)
	brw.Flush()
}
