package proxytest

import "net/http"

// UpgradeEcho is a backend handler for protocol-upgrade tests: it answers
// "Connection: Upgrade, Upgrade: echo" with 101 Switching Protocols, then
// reads one line from the upgraded connection and writes it back prefixed
// with "echo: ". Other requests get 400.
func UpgradeEcho(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Upgrade") != "echo" || r.Header.Get("Connection") != "Upgrade" {
		http.Error(w, "want Connection: Upgrade, Upgrade: echo", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	brw.Flush()
	line, _ := brw.ReadString('\n')
	brw.WriteString("echo: " + line)
	brw.Flush()
}
