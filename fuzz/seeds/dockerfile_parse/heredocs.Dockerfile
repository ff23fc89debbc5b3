FROM alpine:3.19
RUN <<EOF
set -e
echo "hello $USER"
EOF
RUN <<-'SCRIPT' sh -x
	echo literal $HOME
	SCRIPT
RUN python3 <<PY > /out.txt
print("hi")
PY
COPY <<config.ini <<"raw.txt" /etc/app/
[main]
name=$NAME
config.ini
raw $NAME
raw.txt
ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://example.com/a.tar.gz /a.tar.gz
ADD --keep-git-dir=true --link https://github.com/moby/buildkit.git#v0.12 /src
ADD --unpack=false archive.tar.gz /opt/
RUN --network=none --security=insecure --mount=type=secret,id=npmrc,target=/root/.npmrc,required \
    --mount=type=tmpfs,target=/tmp,size=64m --mount=type=ssh \
    --mount=type=cache,id=apk,target=/var/cache/apk,mode=0700,uid=1000,gid=1000 \
    apk add git
