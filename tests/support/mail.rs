//! A real SMTP server for the tests: aiosmtpd (PyPI; `make test` installs it), delivering every
//! mail it accepts into a Maildir, and Python's own parser to read them back as a mail client would.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpServer {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
}

impl SmtpServer {
    pub fn start(dir: &std::path::Path) -> SmtpServer {
        let port = TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        std::fs::create_dir_all(dir).expect("mail dir");
        let maildir = dir.join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 -m aiosmtpd (make test installs aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen on {port} (is it installed? `pip install aiosmtpd`)");
            std::thread::sleep(Duration::from_millis(100));
        }
        SmtpServer { child, port, maildir }
    }

    /// Where mails are delivered (a Maildir: each mail a file in `new/`).
    pub fn maildir(&self) -> &std::path::Path {
        &self.maildir
    }

    /// The mails delivered so far, each as (recipient, subject, decoded text body), oldest first.
    pub fn mails(&self) -> Vec<(String, String, String)> {
        let script = r#"
import email, json, mailbox, sys
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
out = []
# Keys start with the delivery time (seconds, then microseconds): their order is delivery order.
for key in sorted(box.keys()):
    message = email.message_from_bytes(box.get_bytes(key))
    body = message.get_payload(decode=True).decode(message.get_content_charset() or 'utf-8')
    out.append([message['To'], message['Subject'], body])
print(json.dumps(out))
"#;
        if !self.maildir.join("new").exists() {
            return Vec::new();
        }
        let output = Command::new("python3").arg("-c").arg(script).arg(&self.maildir).output().expect("python3");
        assert!(output.status.success(), "reading the maildir: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("mails as JSON")
    }

    /// Waits for the `count`-th mail; returns it.
    pub fn wait_for_mail(&self, count: usize, within: Duration) -> (String, String, String) {
        let deadline = Instant::now() + within;
        loop {
            let mails = self.mails();
            if mails.len() >= count {
                return mails[count - 1].clone();
            }
            assert!(Instant::now() < deadline, "mail #{count} did not arrive within {within:?} (got {})", mails.len());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
