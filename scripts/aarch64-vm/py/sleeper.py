import threading, time

open("/tmp/ready", "w").close()

def nap():
    time.sleep(1000)  # line 6

threading.Thread(target=nap, daemon=True).start()
nap()  # line 9
