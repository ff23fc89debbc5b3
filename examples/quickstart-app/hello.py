"""The quickstart sandbox's program: says where it runs and what the Image put there."""
import os
import platform
import sys

print(f"{os.environ.get('GREETING', 'hello')}!")
print(f"  python  {platform.python_version()} ({sys.executable})")
print(f"  cwd     {os.getcwd()}")
print(f"  APP_ENV {os.environ.get('APP_ENV', '(unset)')}")
try:
    with open("/app/BUILD_INFO", encoding="utf-8") as f:
        print(f"  build   {f.read().strip()}")
except OSError as e:
    print(f"  build   no /app/BUILD_INFO ({e.strerror})")
print(f"  files   {' '.join(sorted(os.listdir('/app')))}")
