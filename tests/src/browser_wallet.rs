//! A wallet in the test browser: an EIP-1193 provider (`window.ethereum`)
//! put into every page before its scripts run, as a wallet extension does.
//! It shares one account (in lower case, as MetaMask does) and asks the test
//! process to sign: `personal_sign` queues the request in the page, the test
//! takes it, signs with a `TestWallet` (the key of a dev account) and answers
//! it — where a real wallet would ask its user.

use crate::browser::Browser;
use dexto_shared::chain::testing::TestWallet;
use dexto_shared::chain::Address;
use serde_json::Value;

const PROVIDER: &str = r#"(() => {
  const account = "__ACCOUNT__";
  const asked = [], waiting = new Map();
  let ids = 0;
  window.__testWallet = {
    asked,
    answer(id, signature) { waiting.get(id)(signature); waiting.delete(id); },
  };
  window.ethereum = {
    request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return Promise.resolve([account]);
      if (method === "personal_sign") {
        return new Promise((resolve) => { const id = ++ids; waiting.set(id, resolve); asked.push({ id, params }); });
      }
      return Promise.reject(Object.assign(new Error(`unsupported: ${method}`), { code: 4200 }));
    },
  };
})();"#;

pub struct BrowserWallet {
    wallet: TestWallet,
}

impl BrowserWallet {
    /// Puts the wallet into every page `b` loads from now on.
    pub fn install(b: &Browser, wallet: TestWallet) -> BrowserWallet {
        b.before_each_page(&PROVIDER.replace("__ACCOUNT__", &wallet.address().lower()));
        BrowserWallet { wallet }
    }

    pub fn address(&self) -> Address {
        self.wallet.address()
    }

    /// Waits for the page to ask for a signature, checks that it asks the
    /// MetaMask way (`[hex of the UTF-8 message, our address]`), signs and
    /// answers. Returns the message signed.
    pub fn sign_next_request(&self, b: &Browser) -> String {
        let mut asked = Value::Null;
        b.wait_until("the page to ask the wallet for a signature", || {
            asked = b.script("return window.__testWallet.asked.shift() ?? null");
            !asked.is_null()
        });
        let params = &asked["params"];
        assert_eq!(params[1].as_str(), Some(self.address().lower().as_str()), "signed by our account: {asked}");
        let hex_message = params[0].as_str().and_then(|m| m.strip_prefix("0x")).unwrap_or_else(|| panic!("a 0x-hex message: {asked}"));
        let message = String::from_utf8(hex::decode(hex_message).expect("hex")).expect("UTF-8 message");
        let signature = self.wallet.sign(&message);
        b.script(&format!("window.__testWallet.answer({}, {signature:?}); return true", asked["id"]));
        message
    }
}
