import ccext

def go():
    x = 1
    ccext.crash_null()  # line 5

go()
