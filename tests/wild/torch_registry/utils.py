URL = "@@WEIGHTS@@/linear.pth"
