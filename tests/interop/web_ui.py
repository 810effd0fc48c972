# The browser session of tests/tests/web_ui.rs: headless Chromium, driven by
# Selenium, uses bittide's web UI the way a person would (log in, add a
# torrent by file upload with one file left out, add one by magnet, watch
# both reach 100 %, pause and resume, skip a file, remove with data), on a
# desktop and on a phone-width window. Prints one JSON line of what it saw;
# the Rust test checks it and the files on disk.
import json, os, sys, time
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

args = json.loads(sys.argv[1])
base, shots = args["base"], args["shots"]
out = {"console": []}

opts = webdriver.ChromeOptions()
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
          "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"]:
    opts.add_argument(a)
opts.binary_location = "/usr/bin/chromium"
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
d.set_page_load_timeout(30)


def wait(what, cond, timeout=90):
    """Polls cond() (an element not there yet, or gone with a re-rendered
    page, counts as not yet)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            v = cond()
            if v:
                return v
        except (StaleElementReferenceException, NoSuchElementException):
            pass
        time.sleep(0.2)
    d.save_screenshot(os.path.join(shots, "timeout.png"))
    raise SystemExit(f"timed out waiting for {what}")


def row(hash_):
    rows = d.find_elements(By.CSS_SELECTOR, f'#torrent-rows tr[data-hash="{hash_}"]')
    return rows[0] if rows else None


def row_state(hash_):
    r = row(hash_)
    if r is None:
        return None
    bar = r.find_element(By.CSS_SELECTOR, "[role=progressbar]")
    return (r.find_element(By.CSS_SELECTOR, ".state").text, int(bar.get_attribute("aria-valuenow")))


def select_only(hash_):
    for box in d.find_elements(By.CSS_SELECTOR, "#torrent-rows input[type=checkbox]:checked"):
        box.click()
    row(hash_).find_element(By.CSS_SELECTOR, "input[type=checkbox]").click()


try:
    d.get(base + "/")
    # Credentials are set: the page asks for them.
    wait("the login form", lambda: d.find_element(By.ID, "login-dialog").get_attribute("open") is not None)
    d.find_element(By.NAME, "username").send_keys(args["user"])
    d.find_element(By.NAME, "password").send_keys("wrong password")
    d.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    out["bad_login"] = wait("the refusal", lambda: d.find_element(By.ID, "login-error").text)
    pw = d.find_element(By.NAME, "password")
    pw.clear()
    pw.send_keys(args["password"], Keys.ENTER)
    wait("the list", lambda: d.find_element(By.ID, "login-dialog").get_attribute("open") is None
         and d.find_element(By.ID, "link").get_attribute("class") == "link live")

    # Add by file upload, leaving one file out.
    # The page changes on `hashchange`, after the click returns.
    d.find_element(By.CSS_SELECTOR, 'nav a[href="#/add"]').click()
    wait("the add page", lambda: d.find_element(By.ID, "torrent-file")).send_keys(args["torrent"])
    boxes = wait("the file choice", lambda: d.find_elements(By.CSS_SELECTOR, "#add-files input[data-index]"))
    out["add_files_listed"] = len(boxes)
    for b in boxes:
        if b.get_attribute("data-index") == str(args["leave_out"]):
            b.click()
    d.find_element(By.ID, "category").send_keys("shows")
    d.find_element(By.ID, "add-submit").click()
    wait("the list after adding", lambda: d.current_url.endswith("#/") and row(args["file_hash"]))

    # Add by magnet.
    d.find_element(By.CSS_SELECTOR, 'nav a[href="#/add"]').click()
    wait("the add page", lambda: d.find_element(By.ID, "links")).send_keys(args["magnet"])
    d.find_element(By.ID, "add-submit").click()
    wait("the magnet's row", lambda: d.current_url.endswith("#/") and row(args["magnet_hash"]))

    # Both reach 100 %, followed live (no reload).
    states = {args["file_hash"]: [], args["magnet_hash"]: []}

    def both_done():
        done = True
        for h, seen in states.items():
            s = row_state(h)
            if s and (not seen or seen[-1] != s[0]):
                seen.append(s[0])
            done = done and s is not None and s[1] == 100 and s[0] == "seeding"
        return done
    wait("both torrents at 100 %", both_done, timeout=180)
    out["states"] = states
    d.save_screenshot(os.path.join(shots, "list.png"))

    # Pause and resume one.
    h = args["magnet_hash"]
    select_only(h)
    d.find_element(By.ID, "pause-selected").click()
    wait("paused", lambda: row_state(h)[0] == "paused")
    d.find_element(By.ID, "resume-selected").click()
    out["resumed_to"] = wait("resumed", lambda: row_state(h)[0] in ("seeding",) and row_state(h)[0])

    # The file-upload torrent's page: files, a file set to skip.
    row(args["file_hash"]).find_element(By.CSS_SELECTOR, "td.name a").click()
    wait("its files", lambda: len(d.find_elements(By.CSS_SELECTOR, "#file-rows tr[data-index]")) > 1)
    pri = {r.get_attribute("data-index"): Select(r.find_element(By.CSS_SELECTOR, "select")).first_selected_option.text
           for r in d.find_elements(By.CSS_SELECTOR, "#file-rows tr[data-index]")}
    out["priorities_before"] = pri
    skip_row = d.find_element(By.CSS_SELECTOR, f'#file-rows tr[data-index="{args["skip"]}"]')
    Select(skip_row.find_element(By.CSS_SELECTOR, "select")).select_by_value("skip")
    d.find_element(By.ID, "details-name").click()  # leaves the menu: the table may redraw
    time.sleep(1.5)
    wait("the skip to stick", lambda: Select(d.find_element(
        By.CSS_SELECTOR, f'#file-rows tr[data-index="{args["skip"]}"] select')).first_selected_option.text == "skip")
    # Its own upload limit.
    d.find_element(By.ID, "limit-up").send_keys("64")
    d.find_element(By.ID, "limits-save").click()
    wait("the limit", lambda: "Limits set" in d.find_element(By.ID, "toasts").text)
    out["details_facts"] = d.find_element(By.ID, "details-facts").text
    out["trackers"] = d.find_element(By.ID, "tracker-rows").text
    d.save_screenshot(os.path.join(shots, "details.png"))

    # Stats page with its graph, and settings.
    d.find_element(By.CSS_SELECTOR, 'nav a[href="#/stats"]').click()
    wait("stats", lambda: "Torrents" in d.find_element(By.ID, "stats-facts").text)
    time.sleep(2)
    d.save_screenshot(os.path.join(shots, "stats.png"))
    d.find_element(By.CSS_SELECTOR, 'nav a[href="#/settings"]').click()
    limit = wait("settings", lambda: d.find_element(By.NAME, "upload_rate"))
    limit.send_keys("512")
    d.find_element(By.ID, "settings-save").click()
    wait("saved", lambda: d.find_element(By.NAME, "upload_rate").get_attribute("value") == "512")

    # Remove the magnet's torrent with its data.
    d.find_element(By.CSS_SELECTOR, 'nav a[href="#/"]').click()
    wait("the list", lambda: row(h))
    select_only(h)
    d.find_element(By.ID, "remove-selected").click()
    dialog = wait("the confirmation", lambda: d.find_element(By.ID, "remove-dialog").get_attribute("open") is not None
                  and d.find_element(By.ID, "remove-dialog"))
    dialog.find_element(By.NAME, "delete_data").click()
    d.find_element(By.ID, "remove-confirm").click()
    wait("the row to go", lambda: row(h) is None)

    # Keyboard: from a fresh page, Tab walks the header's links.
    d.get(base + "/")
    d.refresh()
    wait("the list", lambda: d.find_elements(By.CSS_SELECTOR, "#torrent-rows tr[data-hash]"))
    out["tab_focus"] = []
    for _ in range(3):
        d.switch_to.active_element.send_keys(Keys.TAB)
        out["tab_focus"].append(d.execute_script("return document.activeElement.textContent.trim()"))

    # A phone-width window: nothing wider than the screen.
    d.set_window_size(390, 844)
    time.sleep(1)
    out["phone_overflow"] = d.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    d.save_screenshot(os.path.join(shots, "phone.png"))

    out["console"] = [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]
finally:
    d.quit()

# What the API says afterwards (HTTP Basic, as a script would).
import requests
auth = (args["user"], args["password"])
get = lambda p: requests.get(base + p, auth=auth, timeout=20).json()
out["api_list"] = [t["info_hash"] for t in get("/api/v1/torrents")]
out["api_details"] = get("/api/v1/torrents/" + args["file_hash"])
out["api_settings"] = get("/api/v1/settings")
print(json.dumps(out))
