package testsogo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Directory is the LDAP server SOGo reads its users from.
type Directory struct {
	URL          string // ldap://127.0.0.1:port
	BindDN       string
	BindPassword string
	BaseDN       string // where the users are
	// UIDField is the attribute holding the login SOGo is given in
	// x-webobjects-remote-user; certgate sends the userPrincipalName.
	UIDField string
}

// Stack is a running SOGo with its database, cache and mail server.
type Stack struct {
	// URL is http://127.0.0.1:port of the tap in front of sogod: point a
	// proxy's backends here.
	URL string
	// SOGoURL is sogod's own address, for requests that must not be
	// counted by the tap.
	SOGoURL string
	// Tap records what reached sogod.
	Tap *Tap
	// ResourcesURL serves SOGo's static files (WebServerResources), which
	// sogod does not serve itself: Debian's sample Apache configuration
	// aliases /SOGo.woa/WebServerResources/ to the package's folder, and
	// this plain file server stands in for that alias.
	ResourcesURL string
	// Sent receives each message SOGo submits over SMTP, after it has been
	// delivered to its local recipients.
	Sent chan []byte

	tb  testing.TB
	dir string
	bin bins

	imapPort int
	mu       sync.Mutex
	procs    []*proc
}

// bins are the programs of the Debian packages.
type bins struct {
	sogod, dovecot, lda, memcached, postgres, initdb string
}

// Start runs the whole stack for the test, with SOGo's users in dir. It
// returns when sogod answers.
func Start(tb testing.TB, dir Directory) *Stack {
	tb.Helper()
	b := findBins(tb)
	requireRoot(tb)
	// t.TempDir's parents are 0700 root: the service users could not
	// reach their folders in it.
	root, err := os.MkdirTemp("", "cg-sogo-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		tb.Fatal(err)
	}
	s := &Stack{tb: tb, dir: root, bin: b, Sent: make(chan []byte, 16)}
	tb.Cleanup(func() {
		s.stopAll()
		if tb.Failed() || os.Getenv("CERTGATE_KEEP_SOGO") != "" {
			tb.Logf("the SOGo stack's files are kept in %s", root)
			return
		}
		os.RemoveAll(root)
	})

	pgPort := s.startPostgres()
	mcPort := s.startMemcached()
	s.imapPort = s.startDovecot()
	smtpPort := s.startSMTP()
	sogoPort := s.startSOGo(dir, pgPort, mcPort, s.imapPort, smtpPort)
	s.SOGoURL = fmt.Sprintf("http://127.0.0.1:%d", sogoPort)
	s.Tap = newTap(tb, fmt.Sprintf("127.0.0.1:%d", sogoPort))
	s.URL = "http://" + s.Tap.Addr()
	s.ResourcesURL = s.serveResources()
	return s
}

func findBins(tb testing.TB) bins {
	tb.Helper()
	var b bins
	var missing []string
	look := func(dst *string, pkg string, paths ...string) {
		for _, p := range paths {
			if m, _ := filepath.Glob(p); len(m) > 0 {
				*dst = m[len(m)-1]
				return
			}
		}
		missing = append(missing, fmt.Sprintf("%s (package %s)", filepath.Base(paths[0]), pkg))
	}
	look(&b.sogod, "sogo", "/usr/sbin/sogod")
	if _, err := os.Stat("/usr/lib/GNUstep/SOGo/ActiveSync.SOGo"); err != nil {
		missing = append(missing, "ActiveSync.SOGo (package sogo-activesync)")
	}
	look(&b.dovecot, "dovecot-imapd", "/usr/sbin/dovecot")
	if _, err := os.Stat("/usr/lib/dovecot/imap"); err != nil {
		missing = append(missing, "imap (package dovecot-imapd)")
	}
	look(&b.lda, "dovecot-core", "/usr/lib/dovecot/dovecot-lda")
	look(&b.memcached, "memcached", "/usr/bin/memcached")
	look(&b.postgres, "postgresql", "/usr/lib/postgresql/*/bin/postgres")
	look(&b.initdb, "postgresql", "/usr/lib/postgresql/*/bin/initdb")
	if len(missing) > 0 {
		// A skip, even in CI: .ci/run installs these, and a machine where
		// it could not is reported by the skip message rather than as a
		// certgate failure.
		tb.Skipf("SOGo stack not installed: missing %s; apt-get install sogo sogo-activesync dovecot-imapd postgresql memcached", strings.Join(missing, ", "))
	}
	return b
}

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("the SOGo stack needs root (dovecot starts as root; sogod and postgres run as their Debian users)")
	}
	tb.Skip("the SOGo stack needs root (dovecot starts as root; sogod and postgres run as their Debian users)")
}

// proc is one process of the stack, with its log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// account returns the credentials of a Debian service user.
func (s *Stack) account(name string) *syscall.Credential {
	s.tb.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		s.tb.Fatalf("service user %s: %v (it comes with its Debian package)", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

// mkdir makes a folder of the stack owned by the service user as.
func (s *Stack) mkdir(name string, as *syscall.Credential) string {
	s.tb.Helper()
	p := filepath.Join(s.dir, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		s.tb.Fatal(err)
	}
	if as != nil {
		if err := os.Chown(p, int(as.Uid), int(as.Gid)); err != nil {
			s.tb.Fatal(err)
		}
	}
	return p
}

// start runs a long-lived process, as the user as (nil: root), with its
// output in NAME.log.
func (s *Stack) start(name string, as *syscall.Credential, env []string, bin string, args ...string) *proc {
	s.tb.Helper()
	logPath := filepath.Join(s.dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: sogod and dovecot fork children, and the
	// whole group is stopped at the end.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: as}
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("%s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p
}

// Log returns what the named process (postgres, memcached, dovecot, sogod)
// has logged.
func (s *Stack) Log(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, name+".log"))
	return string(b)
}

// stopAll stops the processes in reverse order: SIGTERM to the process
// and its descendants, then SIGKILL to whatever is left after a few
// seconds. Descendants are found through /proc rather than by process
// group: sogod's workers put themselves in groups of their own, and its
// watchdog keeps waiting for them after a SIGTERM.
func (s *Stack) stopAll() {
	s.mu.Lock()
	procs := s.procs
	s.procs = nil
	s.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		p := procs[i]
		pid := p.cmd.Process.Pid
		family := append(descendants(pid), pid)
		for _, q := range family {
			_ = syscall.Kill(q, syscall.SIGTERM)
		}
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		for _, q := range family {
			_ = syscall.Kill(q, syscall.SIGKILL)
		}
		<-p.done
	}
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		q, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name, in parentheses, may hold spaces: the fields
		// after its closing parenthesis are state, then the parent's pid.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], q)
		}
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		for _, c := range children[p] {
			out = append(out, c)
			walk(c)
		}
	}
	walk(pid)
	return out
}

// waitFor polls ready (waiting on an external process is the one place a
// poll is right) until it returns nil, p exits, or the deadline passes.
func (s *Stack) waitFor(p *proc, limit time.Duration, ready func() error) {
	s.tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case <-p.done:
			s.tb.Fatalf("%s exited: %v\n%s", p.name, p.cmd.ProcessState, tail(s.Log(p.name)))
		default:
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("%s not ready after %v: %v\n%s", p.name, limit, err, tail(s.Log(p.name)))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// freePort returns a port that was free a moment ago.
func (s *Stack) freePort() int {
	s.tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func dialOK(port int) error {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// startPostgres makes a throwaway cluster whose superuser is sogo (trust
// authentication on loopback) and serves it; SOGo creates its tables in
// the default database on first use.
func (s *Stack) startPostgres() int {
	s.tb.Helper()
	pg := s.account("postgres")
	dir := s.mkdir("pg", pg)
	data := filepath.Join(dir, "data")
	env := []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=" + dir}
	cmd := exec.Command(s.bin.initdb, "-D", data, "-U", "sogo", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions")
	cmd.Env = env
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg}
	if out, err := cmd.CombinedOutput(); err != nil {
		s.tb.Fatalf("initdb: %v\n%s", err, out)
	}
	port := s.freePort()
	p := s.start("postgres", pg, env, s.bin.postgres, "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		// A test database: durability buys nothing and costs CPU and time.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=40")
	s.waitFor(p, 30*time.Second, func() error {
		if !strings.Contains(s.Log("postgres"), "database system is ready to accept connections") {
			return errors.New("not ready yet")
		}
		return dialOK(port)
	})
	return port
}

func (s *Stack) startMemcached() int {
	s.tb.Helper()
	port := s.freePort()
	p := s.start("memcached", s.account("memcache"), nil, s.bin.memcached,
		"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "16", "-t", "1")
	s.waitFor(p, 10*time.Second, func() error { return dialOK(port) })
	return port
}

// dovecotConf serves IMAP on loopback without TLS, accepts any password
// from 127.0.0.1 (SOGo has none to give: the proxy signed the user in),
// and keeps Maildirs under the stack's folder, owned by the mail user.
const dovecotConf = `# generated by certgate's internal/testsogo
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/../dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:%[2]s/%%n/Maildir
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = static
  args = nopassword=y allow_nets=127.0.0.1/32
}
userdb {
  driver = static
  args = uid=mail gid=mail home=%[2]s/%%n allow_all_users=yes
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[3]d
  }
  inet_listener imaps {
    port = 0
  }
}
namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
}
`

func (s *Stack) startDovecot() int {
	s.tb.Helper()
	dir := s.mkdir("dovecot", nil)
	mail := s.mkdir("mail", s.account("mail"))
	port := s.freePort()
	conf := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(dovecotConf, dir, mail, port)), 0o644); err != nil {
		s.tb.Fatal(err)
	}
	// dovecot writes its own log (log_path); dovecot-out.log catches what
	// it says before it has opened that.
	p := s.start("dovecot-out", nil, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, s.bin.dovecot, "-F", "-c", conf)
	s.waitFor(p, 15*time.Second, func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "* OK") {
			return fmt.Errorf("greeting %q", line)
		}
		return nil
	})
	return port
}

// Deliver hands msg (RFC 5322, CRLF or LF line ends) to dovecot-lda for
// the local user rcpt, as an MTA would: it is in the user's INBOX when
// Deliver returns.
func (s *Stack) Deliver(rcpt string, msg []byte) {
	s.tb.Helper()
	if err := s.deliver(rcpt, msg); err != nil {
		s.tb.Fatal(err)
	}
	if err := s.enableCondstore(rcpt); err != nil {
		s.tb.Fatal(err)
	}
}

// enableCondstore turns on modification sequences in the user's mailboxes.
// SOGo 5.8's ActiveSync reads HIGHESTMODSEQ from a plain SELECT, which
// dovecot reports only for a mailbox where some client has enabled
// CONDSTORE; in a brand-new mailbox SOGo's Sync finds nothing ever
// changed. Any CONDSTORE client (a desktop mail program) does this in a
// real deployment; here it is done once, as the user, over IMAP.
func (s *Stack) enableCondstore(user string) error {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.imapPort), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		return err
	}
	cmds := []string{fmt.Sprintf("LOGIN %q \"\"", user), "ENABLE CONDSTORE"}
	for _, box := range []string{"INBOX", "Sent", "Drafts", "Trash"} {
		cmds = append(cmds, "SELECT "+box)
	}
	for i, cmd := range append(cmds, "LOGOUT") {
		tag := fmt.Sprintf("t%d", i)
		if _, err := fmt.Fprintf(c, "%s %s\r\n", tag, cmd); err != nil {
			return err
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("imap %s: %w", cmd, err)
			}
			if strings.HasPrefix(line, tag+" ") {
				if !strings.HasPrefix(line, tag+" OK") {
					return fmt.Errorf("imap %s: %s", cmd, strings.TrimSpace(line))
				}
				break
			}
		}
	}
	return nil
}

func (s *Stack) deliver(rcpt string, msg []byte) error {
	cmd := exec.Command(s.bin.lda, "-c", filepath.Join(s.dir, "dovecot", "dovecot.conf"), "-d", rcpt)
	cmd.Stdin = bytes.NewReader(msg)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dovecot-lda -d %s: %v\n%s\n%s", rcpt, err, out, tail(s.Log("dovecot")))
	}
	return nil
}

// sogoArgs are sogod's settings, given on its command line: that domain
// comes before /etc/sogo/sogo.conf, which the package installs with
// values for a real host.
func sogoArgs(dir Directory, sogoDir string, port, pgPort, mcPort, imapPort, smtpPort int) []string {
	db := fmt.Sprintf("postgresql://sogo:unused@127.0.0.1:%d/postgres", pgPort)
	uid := dir.UIDField
	if uid == "" {
		uid = "userPrincipalName"
	}
	source := fmt.Sprintf(`({
  type = ldap; id = directory; canAuthenticate = YES; isAddressBook = NO;
  hostname = %q; baseDN = %q; bindDN = %q; bindPassword = %q;
  filter = "objectClass = 'inetOrgPerson'";
  UIDFieldName = %s; bindFields = (%s); IDFieldName = cn; CNFieldName = cn; MailFieldNames = (mail);
})`, dir.URL, dir.BaseDN, dir.BindDN, dir.BindPassword, uid, uid)
	return []string{
		"-WONoDetach", "YES",
		"-WOPort", fmt.Sprintf("127.0.0.1:%d", port),
		// A Ping holds its worker for the whole heartbeat.
		// sogod's watchdog turns a connection away when every worker is
		// busy (it does not queue), and a browser opens several at once.
		"-WOWorkersCount", "6",
		"-WOLogFile", "-",
		"-WOPidFile", filepath.Join(sogoDir, "sogo.pid"),
		"-SOGoProfileURL", db + "/sogo_user_profile",
		"-OCSFolderInfoURL", db + "/sogo_folder_info",
		"-OCSSessionsFolderURL", db + "/sogo_sessions_folder",
		"-OCSEMailAlarmsFolderURL", db + "/sogo_alarms_folder",
		"-OCSStoreURL", db + "/sogo_store",
		"-OCSAclURL", db + "/sogo_acl",
		"-OCSCacheFolderURL", db + "/sogo_cache_folder",
		"-OCSAdminURL", db + "/sogo_admin",
		"-SOGoMemcachedHost", fmt.Sprintf("127.0.0.1:%d", mcPort),
		"-SOGoIMAPServer", fmt.Sprintf("imap://127.0.0.1:%d", imapPort),
		"-SOGoMailingMechanism", "smtp",
		"-SOGoSMTPServer", fmt.Sprintf("smtp://127.0.0.1:%d", smtpPort),
		"-SOGoSieveScriptsEnabled", "NO",
		"-SOGoMailDomain", "contoso.com",
		"-SOGoTimeZone", "UTC",
		"-SOGoSentFolderName", "Sent",
		"-SOGoTrashFolderName", "Trash",
		"-SOGoDraftsFolderName", "Drafts",
		// The user is whoever the front proxy names in
		// x-webobjects-remote-user: certgate, after the certificate.
		"-SOGoTrustProxyAuthentication", "YES",
		// Ping checks the mailbox every SOGoInternalSyncInterval seconds
		// (never under 5) for up to the heartbeat the device asks, capped
		// by SOGoMaximumPingInterval (10 s by default: phones ask for
		// several minutes).
		"-SOGoInternalSyncInterval", "5",
		"-SOGoMaximumPingInterval", "3540",
		"-SOGoMaximumSyncInterval", "3540",
		// Minutes a worker may spend on one request: a Ping's.
		"-WOWatchDogRequestTimeout", "60",
		"-SOGoEASDebugEnabled", "YES",
		"-ImapDebugEnabled", "YES",
		"-SOGoUserSources", source,
	}
}

func (s *Stack) startSOGo(dir Directory, pgPort, mcPort, imapPort, smtpPort int) int {
	s.tb.Helper()
	as := s.account("sogo")
	home := s.mkdir("sogo", as)
	port := s.freePort()
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "LANG=C.UTF-8", "TZ=UTC"}
	p := s.start("sogod", as, env, s.bin.sogod, sogoArgs(dir, home, port, pgPort, mcPort, imapPort, smtpPort)...)
	// Ready when a worker answers an ActiveSync OPTIONS (no user: SOGo
	// refuses it, but only once it is serving).
	s.waitFor(p, 60*time.Second, func() error {
		c := &http.Client{Timeout: 5 * time.Second}
		req, _ := http.NewRequest(http.MethodOptions, fmt.Sprintf("http://127.0.0.1:%d/SOGo/Microsoft-Server-ActiveSync", port), nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return port
}

// webServerResources is where the sogo package installs the web UI's
// scripts, styles and images.
const webServerResources = "/usr/lib/GNUstep/SOGo/WebServerResources"

// serveResources serves /SOGo.woa/WebServerResources/ and
// /SOGo/WebServerResources/ from the package's folder.
func (s *Stack) serveResources() string {
	s.tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.tb.Fatal(err)
	}
	files := http.FileServer(http.Dir(webServerResources))
	mux := http.NewServeMux()
	mux.Handle("/SOGo.woa/WebServerResources/", http.StripPrefix("/SOGo.woa/WebServerResources", files))
	mux.Handle("/SOGo/WebServerResources/", http.StripPrefix("/SOGo/WebServerResources", files))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.tb.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// IMAPPort is dovecot's IMAP port on 127.0.0.1.
func (s *Stack) IMAPPort() int { return s.imapPort }

// startSMTP is the MTA SOGo submits to: it takes each message and hands
// it to dovecot-lda for the recipients at contoso.com, then to Sent.
func (s *Stack) startSMTP() int {
	s.tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.tb.Fatal(err)
	}
	var wg sync.WaitGroup
	s.tb.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(time.Minute))
				if err := s.smtpSession(c); err != nil {
					s.tb.Logf("smtp: %v", err)
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// smtpSession speaks the part of RFC 5321 a submitting client needs.
func (s *Stack) smtpSession(c net.Conn) error {
	r := bufio.NewReader(io.LimitReader(c, 32<<20))
	say := func(line string) error { _, err := io.WriteString(c, line+"\r\n"); return err }
	if err := say("220 localhost certgate test MTA"); err != nil {
		return err
	}
	var rcpts []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(line)
		if i := strings.IndexByte(verb, ' '); i >= 0 {
			verb = verb[:i]
		}
		switch verb {
		case "EHLO", "HELO":
			err = say("250 localhost")
		case "MAIL", "RSET", "NOOP":
			if verb != "NOOP" {
				rcpts = nil
			}
			err = say("250 ok")
		case "RCPT":
			addr := line[strings.IndexByte(line, ':')+1:]
			addr = strings.Trim(strings.TrimSpace(strings.SplitN(addr, " ", 2)[0]), "<>")
			rcpts = append(rcpts, addr)
			err = say("250 ok")
		case "DATA":
			if err = say("354 go ahead"); err != nil {
				return err
			}
			var msg bytes.Buffer
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return err
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				msg.WriteString(strings.TrimPrefix(l, "."))
			}
			for _, rc := range rcpts {
				if strings.HasSuffix(strings.ToLower(rc), "@contoso.com") {
					if derr := s.deliver(rc, msg.Bytes()); derr != nil {
						_ = say("451 " + strings.SplitN(derr.Error(), "\n", 2)[0])
						return derr
					}
				}
			}
			select {
			case s.Sent <- msg.Bytes():
			default:
			}
			err = say("250 queued")
		case "QUIT":
			_ = say("221 bye")
			return nil
		default:
			err = say("502 not implemented")
		}
		if err != nil {
			return err
		}
	}
}
