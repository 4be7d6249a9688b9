#!/usr/bin/env python3
"""Drives a running Label Studio server through its HTTP API as a scripted reviewer (Scripts/labelstudio-roundtrip.sh).

    labelstudio_roundtrip.py --url http://127.0.0.1:PORT --email E --password P \
        --tasks review.json --config review.json.config.xml --images-dir DIR --answers truth.json \
        --export export.json [--png-size 112] [--screenshot shot.png --chromium /usr/bin/chromium]

Steps, each checked (exit 1 with one message on the first failure):
  0. log in as the reviewer (a browser session; every later call uses it);
  1. create a project from the labeling configuration written by `hdlabel review export`;
  2. connect a local-files storage at --images-dir (Label Studio serves /data/local-files/ only under one);
  3. import the tasks and check the server holds every one;
  4. fetch, as the reviewer's browser does, every task's image and nearest-labeled image:
     HTTP 200, a PNG, --png-size pixels square;
  5. answer every task as the reviewer (--answers: {"sample_id": "class name"}), through the annotations API;
  6. export the project (JSON) to --export;
  7. with --screenshot: open one task's page in headless Chromium, logged in with the reviewer's session cookie,
     and save a PNG (the browser may reach 127.0.0.1 only).
Only the server's loopback address is contacted.
"""
import argparse
import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlparse

import requests


def die(msg):
    print(f"labelstudio_roundtrip: error: {msg}", file=sys.stderr)
    sys.exit(1)


def say(msg):
    print(f"labelstudio_roundtrip: {msg}", file=sys.stderr, flush=True)


def png_size(b):
    if len(b) < 24 or b[:8] != b"\x89PNG\r\n\x1a\n" or b[12:16] != b"IHDR":
        return None
    return int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")


class API:
    """The reviewer's logged-in session (Label Studio disables legacy API tokens for new organizations); unsafe
    methods carry Django's CSRF token as a browser's page does."""

    def __init__(self, url, session):
        self.url = url.rstrip("/")
        self.s = session
        self.s.headers["X-CSRFToken"] = session.cookies.get("csrftoken", "")
        self.s.headers["Referer"] = self.url + "/"

    def call(self, method, path, **kw):
        r = self.s.request(method, self.url + path, timeout=120, **kw)
        if r.status_code >= 400:
            die(f"{method} {path}: HTTP {r.status_code}: {r.text[:400]}")
        return r.json() if r.content and "json" in r.headers.get("Content-Type", "") else r


def browser_session(url, email, password):
    """A logged-in session as a browser has it (session cookie; Django's CSRF token from the login form)."""
    s = requests.Session()
    r = s.get(url + "/user/login/", timeout=60)
    m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', r.text)
    if r.status_code != 200 or not m:
        die(f"login page: HTTP {r.status_code}, no CSRF token")
    r = s.post(url + "/user/login/", data={"csrfmiddlewaretoken": m.group(1), "email": email, "password": password},
               headers={"Referer": url + "/user/login/"}, timeout=60, allow_redirects=False)
    if r.status_code not in (302, 303) or "sessionid" not in s.cookies:
        die(f"login as {email}: HTTP {r.status_code}, no session cookie")
    return s


def screenshot(url, session, page, out, chromium, classes):
    """Opens `page` in headless Chromium with the session's cookies (DevTools protocol) and saves a PNG."""
    import websocket  # websocket-client, pinned in Scripts/requirements-labelstudio.txt

    host = urlparse(url).hostname
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    profile = tempfile.mkdtemp(prefix="ls-chromium-")
    # Every host name except the server's loopback address resolves to nothing: the page cannot reach out.
    proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             f"--remote-debugging-port={port}", "--remote-allow-origins=*", f"--user-data-dir={profile}",
                             f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {host}", "--no-first-run",
                             "--window-size=1400,1000", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ws_url = None
        for _ in range(100):
            try:
                tabs = requests.get(f"http://127.0.0.1:{port}/json", timeout=2).json()
                ws_url = next(t["webSocketDebuggerUrl"] for t in tabs if t.get("type") == "page")
                break
            except Exception:
                time.sleep(0.2)
        if not ws_url:
            die("chromium's DevTools endpoint did not come up")
        ws = websocket.create_connection(ws_url, timeout=120)
        seq = [0]

        def cdp(method, **params):
            seq[0] += 1
            ws.send(json.dumps({"id": seq[0], "method": method, "params": params}))
            while True:
                msg = json.loads(ws.recv())
                if msg.get("id") == seq[0]:
                    if "error" in msg:
                        die(f"chromium {method}: {msg['error']}")
                    return msg.get("result", {})

        cdp("Network.enable")
        for c in session.cookies:
            cdp("Network.setCookie", name=c.name, value=c.value, domain=host, path=c.path or "/")
        cdp("Page.enable")
        cdp("Page.navigate", url=page)
        # The task page is a single-page app: wait until the image and the choices are on screen.
        ready = False
        for _ in range(120):
            time.sleep(0.5)
            r = cdp("Runtime.evaluate", expression="""(() => {
                const imgs = [...document.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0 && i.src.includes('local-files'));
                const text = document.body ? document.body.innerText : '';
                const choices = %s.every(c => text.includes(c));
                return imgs.length + ':' + choices; })()""" % json.dumps(classes), returnByValue=True)
            v = r.get("result", {}).get("value", "0:false")
            if v.split(":")[0] != "0" and v.endswith("true"):
                ready = True
                break
        time.sleep(1.0)
        shot = cdp("Page.captureScreenshot", format="png")
        import base64
        with open(out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        ws.close()
        return ready, v
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--email", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--tasks", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--images-dir", required=True)
    ap.add_argument("--answers", required=True)
    ap.add_argument("--export", required=True)
    ap.add_argument("--png-size", type=int, default=112)
    ap.add_argument("--screenshot")
    ap.add_argument("--chromium")
    ap.add_argument("--summary", help="write what was checked as JSON here")
    a = ap.parse_args()
    if urlparse(a.url).hostname not in ("127.0.0.1", "localhost"):
        die("the server must be on 127.0.0.1")

    web = browser_session(a.url, a.email, a.password)
    api = API(a.url, web)
    tasks_in = json.load(open(a.tasks))
    answers = json.load(open(a.answers))
    config = open(a.config).read()
    summary = {"tasks": len(tasks_in)}

    project = api.call("POST", "/api/projects", json={"title": "hdlabel review", "label_config": config})
    pid = project["id"]
    say(f"project {pid} created from {os.path.basename(a.config)}")
    storage = api.call("POST", "/api/storages/localfiles", json={
        "project": pid, "title": "hdlabel items", "path": os.path.abspath(a.images_dir), "use_blob_urls": True})
    say(f"local-files storage {storage['id']} at {storage['path']}")
    api.call("POST", f"/api/projects/{pid}/import", json=tasks_in)
    tasks = api.call("GET", "/api/tasks", params={"project": pid, "page_size": 10000, "fields": "all"})
    tasks = tasks.get("tasks", tasks) if isinstance(tasks, dict) else tasks
    if len(tasks) != len(tasks_in):
        die(f"the server holds {len(tasks)} tasks, {len(tasks_in)} were imported")
    with_pred = sum(1 for t in tasks if t.get("total_predictions", len(t.get("predictions", []))) > 0)
    say(f"imported {len(tasks)} tasks ({with_pred} with hdlabel's current label as a prediction)")
    summary["imported"] = len(tasks)
    summary["with_prediction"] = with_pred

    # The images, as the reviewer's browser fetches them.
    checked = 0
    for t in tasks:
        for field in ("image", "seed_image"):
            ref = t["data"].get(field)
            if not ref:
                die(f"task {t['id']} (sample {t['data'].get('sample_id')}) has no {field}")
            r = web.get(a.url + ref, timeout=60)
            size = png_size(r.content)
            if r.status_code != 200 or size != (a.png_size, a.png_size):
                die(f"task {t['id']} {field} {ref}: HTTP {r.status_code}, PNG size {size} (want {a.png_size} x {a.png_size})")
            checked += 1
    anon = requests.get(a.url + tasks[0]["data"]["image"], timeout=60, allow_redirects=False).status_code
    say(f"served {checked} images (every task's item and nearest labeled sample): HTTP 200, PNG {a.png_size} x {a.png_size}; "
        f"without a login: HTTP {anon}")
    summary["images_checked"] = checked
    summary["anonymous_status"] = anon

    # The scripted reviewer answers every task.
    to_name = re.search(r'<Choices name="([^"]+)" toName="([^"]+)"', config)
    if not to_name:
        die("no <Choices name=... toName=...> in the configuration")
    changed = 0
    for t in tasks:
        sid = str(t["data"]["sample_id"])
        if sid not in answers:
            die(f"no answer for sample {sid}")
        if answers[sid] != t["data"].get("current_label"):
            changed += 1
        api.call("POST", f"/api/tasks/{t['id']}/annotations", json={"result": [{
            "from_name": to_name.group(1), "to_name": to_name.group(2), "type": "choices",
            "value": {"choices": [answers[sid]]}}]})
    say(f"answered {len(tasks)} tasks ({changed} changed the current label)")
    summary["answered"] = len(tasks)
    summary["changed"] = changed

    export = api.call("GET", f"/api/projects/{pid}/export", params={"exportType": "JSON"})
    if not isinstance(export, list) or len(export) != len(tasks):
        die(f"export holds {len(export) if isinstance(export, list) else type(export).__name__} tasks, want {len(tasks)}")
    with open(a.export + ".tmp", "w") as f:
        json.dump(export, f, indent=1)
    os.replace(a.export + ".tmp", a.export)
    annotated = sum(1 for t in export if t.get("annotations"))
    say(f"exported {len(export)} tasks ({annotated} annotated) -> {a.export}")
    summary["exported_annotated"] = annotated

    if a.screenshot:
        page = f"{a.url}/projects/{pid}/data?task={tasks[0]['id']}"
        classes = re.findall(r'<Choice value="([^"]+)"', config)
        ready, state = screenshot(a.url, web, page, a.screenshot, a.chromium, [html.unescape(c) for c in classes])
        size = png_size(open(a.screenshot, "rb").read())
        say(f"screenshot of {page} -> {a.screenshot} ({size[0]} x {size[1]}; {state.split(':')[0]} served images on the page, "
            f"every class shown as a choice: {state.endswith('true')})")
        summary["screenshot"] = {"page": page, "size": size, "ready": ready}
        if not ready:
            die("the task page did not show the image and the choices within 60 s (screenshot saved)")
    if a.summary:
        json.dump(summary, open(a.summary, "w"), indent=1)


if __name__ == "__main__":
    main()
