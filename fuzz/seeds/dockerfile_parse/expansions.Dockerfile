FROM a
RUN echo ${A:-${B:+x}} ${C#*/} ${D%%.*} ${E//a/b} "q$HOME" 's'
