"""Plays a bittide stream URL in headless Chromium (Selenium), seeks to
80 % and checks that playback goes on from there (issue 15).

usage: stream_browser.py PAGE STREAM DETAILS SCREENSHOT

PAGE is a page served by the daemon, the web UI (the <video> is put on
it, so the stream is same-origin, under the page's own CSP), STREAM the stream URL, DETAILS the torrent's
/api/v1/torrents/{hash} URL (its progress is read at the seek), SCREENSHOT
where to save a PNG once playback passed the seek point. Prints one JSON
line of what it saw; exits non-zero with a JSON line saying what did not
happen. Every wait is bounded.
"""

import json
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

PAGE, STREAM, DETAILS, SHOT = sys.argv[1:5]

STATE_JS = """
const v = document.querySelector('video');
return {time: v.currentTime, duration: v.duration, ready: v.readyState,
        network: v.networkState, paused: v.paused,
        errors: window.videoErrors || (v.error ? ['media error ' + v.error.code] : [])};
"""

INJECT_JS = """
window.videoErrors = [];
const v = document.createElement('video');
v.id = 'v';
v.muted = true;
v.controls = true;
v.width = 320;
v.height = 240;
v.addEventListener('error', () => {
  window.videoErrors.push('media error ' + (v.error ? v.error.code + ' ' + v.error.message : '?'));
});
v.src = arguments[0];
document.body.prepend(v);
v.play().catch(e => window.videoErrors.push('play(): ' + e));
"""


def stream_requests(driver):
    """The stream's requests as Chromium's network log saw them: range,
    status, bytes received, how each ended (for a failure's message)."""
    seen = {}
    for entry in driver.get_log("performance"):
        m = json.loads(entry["message"])["message"]
        p = m.get("params", {})
        rid = p.get("requestId")
        if m["method"] == "Network.requestWillBeSent" and STREAM in p["request"]["url"]:
            seen[rid] = {"t": p["timestamp"], "range": p["request"]["headers"].get("Range"),
                         "bytes": 0}
        elif rid in seen:
            r = seen[rid]
            if m["method"] == "Network.responseReceived":
                r["status"] = p["response"]["status"]
            elif m["method"] == "Network.dataReceived":
                r["bytes"] += p["dataLength"]
            elif m["method"] == "Network.loadingFinished":
                r["end"] = "finished"
            elif m["method"] == "Network.loadingFailed":
                r["end"] = p.get("errorText")
    return list(seen.values())


def main():
    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required",
                "--window-size=480,360"):
        opts.add_argument(arg)
    opts.binary_location = "/usr/bin/chromium"
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(
        options=opts, service=Service(executable_path="/usr/bin/chromedriver"))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        run(driver)
    finally:
        driver.quit()


def run(driver):
    def state():
        return driver.execute_script(STATE_JS)

    def wait(check, limit, what):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            s = state()
            if s["errors"] is not None and len(s["errors"]) > 0:
                fail(what + ": the video failed", s)
            if check(s):
                return s
            time.sleep(0.1)
        fail("timed out waiting for " + what, state())

    def fail(what, s):
        try:
            with urllib.request.urlopen(DETAILS, timeout=10) as r:
                t = json.load(r)
            torrent = {k: t.get(k) for k in ("state", "progress", "downloaded", "peers")}
        except OSError as e:
            torrent = str(e)
        print(json.dumps({"failed": what, "state": s, "torrent": torrent,
                          "requests": stream_requests(driver),
                          "console": driver.get_log("browser")[:20]}), flush=True)
        sys.exit(1)

    driver.get(PAGE)
    driver.execute_script(INJECT_JS, STREAM)
    started = time.monotonic()
    s = wait(lambda s: s["time"] > 1.0, 60, "playback to start")
    first_second = time.monotonic() - started
    duration = s["duration"]
    seek_to = duration * 0.8
    with urllib.request.urlopen(DETAILS, timeout=10) as r:
        progress_at_seek = json.load(r)["progress"]
    seeked = time.monotonic()
    driver.execute_script("document.getElementById('v').currentTime = arguments[0]", seek_to)
    s = wait(lambda s: s["time"] > seek_to + 1.0 and not s["paused"], 60,
             "playback to go on after the seek")
    after_seek = time.monotonic() - seeked
    driver.save_screenshot(SHOT)
    # The stream URL opened by itself (the web UI's "Play" link): the
    # browser's own player plays it.
    driver.get(STREAM)
    wait(lambda s: s["time"] > 1.0, 60, "the stream opened in a tab to play")
    print(json.dumps({
        "duration": duration,
        "seek_to": seek_to,
        "time_after_seek": s["time"],
        "first_second_secs": first_second,
        "seek_secs": after_seek,
        "progress_at_seek": progress_at_seek,
        "console": driver.get_log("browser"),
    }), flush=True)


if __name__ == "__main__":
    main()
